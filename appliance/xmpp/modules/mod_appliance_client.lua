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
-- * every session of a signed-out account (disabled, deleted, removed by a sync) is closed.
-- The contacts are added to each user's roster when it loads, as shared items (subscription
-- both, not stored); an item the user added personally is never replaced, and a shared
-- item the user edits becomes personal (mod_roster stores it as any other).

module:set_global();

local http = require "net.http";
local json = require "util.json";
local rostermanager = require "core.rostermanager";
local jid_split = require "util.jid".split;

local base = module:get_option_string("appliance_url");
local secret = module:get_option_string("appliance_secret");
local interval = module:get_option_number("appliance_poll_interval", 1);
local client = http.new({ suppress_errors = true });
local hosts = prosody.hosts;

-- host -> { version = "...", users = { name = true }, contacts = { jid -> item } }
local directories = module:shared("directories");
local cursor = 0;
local polling = false;

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
	return { name = contact.name; groups = groups };
end

local function same(a, b)
	if not a or not b or a.name ~= b.name then return false; end
	for g in pairs(a.groups) do if not b.groups[g] then return false; end end
	for g in pairs(b.groups) do if not a.groups[g] then return false; end end
	return true;
end

-- Put the directory into one roster; returns the jids whose item changed.
local function merge(roster, own_jid, contacts)
	local changed = {};
	for jid, item in pairs(roster) do
		if jid and type(item) == "table" and item.appliance and not contacts[jid] then
			roster[jid] = nil;
			changed[#changed + 1] = jid;
		end
	end
	for jid, contact in pairs(contacts) do
		local item = roster[jid];
		if jid ~= own_jid and (not item or item.appliance) and not same(item, contact) then
			roster[jid] = { subscription = "both"; name = contact.name; groups = contact.groups;
				persist = false; appliance = true };
			changed[#changed + 1] = jid;
		end
	end
	if roster[false] then roster[false].version = true; end -- shared items: no versioning
	return changed;
end

local function load(host, data)
	local contacts, users = {}, {};
	for _, contact in ipairs(data.contacts or {}) do
		if type(contact.jid) == "string" then contacts[contact.jid] = shared(contact); end
	end
	for _, name in ipairs(data.users or {}) do users[name] = true; end
	directories[host] = { version = data.version; contacts = contacts; users = users };
	local host_session = hosts[host];
	if not host_session then return; end
	for username, user in pairs(host_session.sessions or {}) do
		if user.roster then
			for _, jid in ipairs(merge(user.roster, username .. "@" .. host, contacts)) do
				rostermanager.roster_push(username, host, jid);
			end
		end
	end
	module:log("info", "Directory of %s: %d contacts (version %s)", host,
		#(data.contacts or {}), tostring(data.version));
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
		local dir = directories[host];
		if dir then merge(event.roster, event.username .. "@" .. host, dir.contacts); end
	end);
	host_module:hook("appliance/user-exists", function(event)
		local dir = directories[host];
		if dir then return dir.users[event.username] == true; end
	end);
end

module:add_timer(0, poll);
