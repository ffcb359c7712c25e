-- mod_appliance_client: the appliance's directory as every user's roster, and sign-outs.
--
-- Global module (modules_enabled, plugin_paths pointing here), with mod_auth_appliance.
-- Options (global): appliance_url, appliance_secret, appliance_poll_interval (seconds, 1).
--
-- Every interval it asks the appliance GET /xmpp/v1/events?after=<cursor>, which answers
--   {"cursor": N, "directories": {"<host>": "<version>", ...}, "signouts": ["user@host", ...]}
-- * a host whose directory version changed is fetched again from
--   GET /xmpp/v1/hosts/<host>/directory:
--   {"version": "...", "users": ["alice", ...],
--    "contacts": [{"jid": "bob@host", "name": "Bob", "groups": ["Sales"]}, ...]}
--   and the difference is pushed to the host's connected users (roster pushes);
-- * every session of a signed-out account (disabled, deleted, removed by a sync) is closed;
-- and it tells the appliance who is signed in (POST /xmpp/v1/sessions) when that changes.
-- Every user's roster sees the contacts as shared items (subscription both, never stored;
-- see attach()); an item the user added personally is never replaced, and a shared item
-- the user edits becomes personal (mod_roster stores it as any other).

module:set_global();

local http = require "net.http";
local json = require "util.json";
local rostermanager = require "core.rostermanager";
local jid_split = require "util.jid".split;
local jid_bare = require "util.jid".bare;
local bare_sessions = prosody.bare_sessions;

local base = module:get_option_string("appliance_url");
local secret = module:get_option_string("appliance_secret");
local interval = module:get_option_number("appliance_poll_interval", 1);
local client = http.new({ suppress_errors = true });
local hosts = prosody.hosts;

-- host -> { version = "...", users = { name = true }, contacts = { jid -> item } }
local directories = module:shared("directories");
local cursor = 0;
local polling = false;

-- Who is signed in: sent to the appliance (POST /xmpp/v1/sessions) when it changed, and at
-- least every REPORT_EVERY seconds, so the appliance can tell a fresh picture from a stale one.
local REPORT_EVERY = 30;
local sessions_dirty, reported_at = true, 0;

local function report_sessions()
	local out = {};
	for name, host_session in pairs(hosts) do
		if directories[name] ~= nil or host_session.sessions then
			local list = {};
			for username, user in pairs(host_session.sessions or {}) do
				for resource, session in pairs(user.sessions or {}) do
					list[#list + 1] = { user = username; resource = resource;
						since = session.conntime and math.floor(session.conntime) or nil };
				end
			end
			out[name] = list;
		end
	end
	sessions_dirty, reported_at = false, os.time();
	client:request(base .. "/xmpp/v1/sessions", {
		method = "POST";
		headers = { ["Content-Type"] = "application/json";
			["Authorization"] = "Bearer " .. secret };
		body = json.encode({ hosts = out });
	}, function(_, code)
		if code ~= 204 then
			sessions_dirty = true;
			module:log("warn", "POST /xmpp/v1/sessions: the appliance answered %s", tostring(code));
		end
	end);
end

local function get(path, callback)
	client:request(base .. path, {
		headers = { ["Authorization"] = "Bearer " .. secret };
	}, function(body, code)
		if code ~= 200 then
			module:log("warn", "GET %s: the appliance answered %s", path, tostring(code));
			return callback(nil);
		end
		local ok, data = pcall(json.decode, body);
		callback(ok and data or nil);
	end);
end

local function shared(contact)
	local groups = {};
	for _, group in ipairs(contact.groups or {}) do groups[group] = true; end
	return { subscription = "both"; name = contact.name; groups = groups; appliance = true };
end

local function same(a, b)
	if not a or not b or a.name ~= b.name then return false; end
	for g in pairs(a.groups) do if not b.groups[g] then return false; end end
	for g in pairs(b.groups) do if not a.groups[g] then return false; end end
	return true;
end

local function copy(item)
	local groups = {};
	for g in pairs(item.groups) do groups[g] = true; end
	return { subscription = item.subscription; name = item.name; groups = groups;
		appliance = true };
end

-- Make `roster` (of own_jid on host) see the host's directory without copying it: a
-- lookup of a directory contact the user has no item of answers a copy of the shared item
-- (so a change to it changes nothing shared), and iterating the roster yields the user's
-- own items, then the directory's. Storage serializes raw tables: shared items are never
-- stored. Loading a roster is O(1) in the directory's size.
local function attach(roster, own_jid, host)
	for jid, item in pairs(roster) do -- items of older versions, stored: not the user's
		if jid and type(item) == "table" and item.appliance then roster[jid] = nil; end
	end
	if roster[false] then roster[false].version = true; end -- shared items: no versioning
	setmetatable(roster, {
		__index = function(_, jid)
			local dir = directories[host];
			local item = jid and jid ~= own_jid and dir and dir.contacts[jid];
			return item and copy(item) or nil;
		end;
		__pairs = function(t)
			local dir = directories[host];
			local contacts = dir and dir.contacts or {};
			local own_done, key = false, nil;
			return function()
				if not own_done then
					local k, v = next(t, key);
					if k ~= nil then key = k; return k, v; end
					own_done, key = true, nil;
				end
				repeat
					local k, v = next(contacts, key);
					key = k;
					if k ~= nil and k ~= own_jid and rawget(t, k) == nil then return k, v; end
				until k == nil
				return nil;
			end, t, nil;
		end;
	});
end

local function load(host, data)
	local contacts, users = {}, {};
	for _, contact in ipairs(data.contacts or {}) do
		if type(contact.jid) == "string" then contacts[contact.jid] = shared(contact); end
	end
	for _, name in ipairs(data.users or {}) do users[name] = true; end
	local before = directories[host] and directories[host].contacts or {};
	directories[host] = { version = data.version; contacts = contacts; users = users };
	local changed = {};
	for jid, item in pairs(contacts) do
		if not same(before[jid], item) then changed[#changed + 1] = jid; end
	end
	for jid in pairs(before) do
		if not contacts[jid] then changed[#changed + 1] = jid; end
	end
	local host_session = hosts[host];
	if host_session and #changed > 0 then
		for username, user in pairs(host_session.sessions or {}) do
			if user.roster then
				for _, jid in ipairs(changed) do
					if rawget(user.roster, jid) == nil then
						rostermanager.roster_push(username, host, jid);
					end
				end
			end
		end
	end
	module:log("info", "Directory of %s: %d contacts, %d changed (version %s)", host,
		#(data.contacts or {}), #changed, tostring(data.version));
end

local function sign_out(jid)
	local username, host = jid_split(jid);
	local user = hosts[host] and hosts[host].sessions and hosts[host].sessions[username];
	if not user then return; end
	for _, session in pairs(user.sessions) do
		session:close({ condition = "not-authorized";
			text = "This account can no longer sign in" });
	end
	module:log("info", "Signed out %s: the appliance withdrew the account", jid);
end

local function poll()
	if sessions_dirty or os.time() - reported_at >= REPORT_EVERY then report_sessions(); end
	if polling then return interval; end
	polling = true;
	get("/xmpp/v1/events?after=" .. tostring(cursor), function(data)
		polling = false;
		if not data then return; end
		for _, jid in ipairs(data.signouts or {}) do sign_out(jid); end
		for host, version in pairs(data.directories or {}) do
			local known = directories[host];
			if hosts[host] and (not known or known.version ~= version) then
				get("/xmpp/v1/hosts/" .. host .. "/directory", function(dir)
					if dir then load(host, dir); end
				end);
			end
		end
		cursor = data.cursor or cursor;
	end);
	return interval;
end

function module.add_host(host_module)
	local host = host_module.host;
	host_module:hook("roster-load", function(event)
		attach(event.roster, event.username .. "@" .. host, host);
	end);
	-- A probe between two people of the directory, to one who is offline, needs no answer:
	-- a client takes a contact it has no presence of as offline. Without this, every
	-- sign-in gets one "unavailable" per directory contact (and the server loads each
	-- contact's roster to send it): seconds for thousands of contacts.
	host_module:hook("presence/bare", function(event)
		local stanza = event.stanza;
		if stanza.attr.type ~= "probe" then return; end
		local to, from = jid_bare(stanza.attr.to), jid_bare(stanza.attr.from);
		local dir = directories[host];
		if dir and dir.contacts[to] and dir.contacts[from] and not bare_sessions[to] then
			return true;
		end
	end, 10);
	host_module:hook("resource-bind", function() sessions_dirty = true; end);
	host_module:hook("resource-unbind", function() sessions_dirty = true; end);
	host_module:hook("appliance/user-exists", function(event)
		local dir = directories[host];
		if dir then return dir.users[event.username] == true; end
	end);
end

module:add_timer(0, poll);
