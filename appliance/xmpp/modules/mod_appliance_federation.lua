-- mod_appliance_federation: the appliance's federation policy for Prosody 0.12.
--
-- Global module (load it from the global modules_enabled, plugin_paths points here).
-- Options, read from the global section at every check so that a reload applies them:
--
--   appliance_federation_enabled = false   -- no s2s traffic at all, in or out, when false
--   appliance_federation_domains = { "ocs.example" }  -- remote domains allowed to federate
--   appliance_federation_routes  = { ["hub.example"] = { host = "192.0.2.7", port = 5269 } }
--                                          -- static routes; a routed domain is allowed too
--   appliance_config_digest = "..."        -- written to <data_path>/appliance_federation.applied
--                                          -- once a (re)loaded config is in force
--
-- Behaviour:
--   * route/remote (per host, before mod_s2s): stanzas to a domain that is not allowed are
--     dropped and answered with a <not-allowed/> (type cancel) error to the sender.
--   * s2s-stream-features (per host): an incoming stream from a domain that is not allowed
--     is closed with <policy-violation/> before any feature (TLS, auth) is offered.
--   * s2s-authenticated (per host): a stream (in or out) that authenticates a domain that
--     is not allowed (e.g. dialback piggybacking) is closed with <policy-violation/>.
--   * net.resolvers.service.new is wrapped: the xmpp-server service of a routed domain
--     resolves to the route's host:port, its xmpps-server service to nothing.
--   * config-reloaded: s2s sessions with domains no longer allowed (all of them when
--     federation is disabled) are closed; outgoing sessions whose route changed too.

module:set_global();

local configmanager = require "core.configmanager";
local s2s_destroy_session = require "core.s2smanager".destroy_session;
local st = require "util.stanza";
local nameprep = require "util.encodings".stringprep.nameprep;
local service = require "net.resolvers.service";
local basic = require "net.resolvers.basic";
local manual = require "net.resolvers.manual";

local hosts = prosody.hosts;
local s2s_sessions = module:shared("/*/s2s/sessions");

local DEFAULT_PORT = 5269;
local STATE_FILE = "appliance_federation.applied";

local function normalize(domain)
	if type(domain) ~= "string" then return nil; end
	return nameprep(domain:lower());
end

-- The policy currently in the config. Rebuilt whenever the config tables change (a reload
-- creates new tables), so the options are effectively read at every check.
local memo = {};

local function current_policy()
	local enabled = configmanager.get("*", "appliance_federation_enabled");
	local domains = configmanager.get("*", "appliance_federation_domains");
	local routes = configmanager.get("*", "appliance_federation_routes");
	if memo.policy and memo.enabled == enabled and memo.domains == domains
			and memo.routes == routes then
		return memo.policy;
	end
	local policy = { enabled = enabled == true, allowed = {}, routes = {} };
	if type(domains) == "string" then domains = { domains }; end
	if type(domains) == "table" then
		for _, domain in ipairs(domains) do
			local d = normalize(domain);
			if d then
				policy.allowed[d] = true;
			else
				module:log("warn", "Ignoring invalid domain in appliance_federation_domains: %s",
					tostring(domain));
			end
		end
	end
	if type(routes) == "table" then
		for domain, route in pairs(routes) do
			local d = normalize(domain);
			local host = type(route) == "table" and route.host;
			local port = type(route) == "table" and (tonumber(route.port) or DEFAULT_PORT);
			if d and type(host) == "string" and host ~= "" and port and port > 0 and port < 65536 then
				policy.routes[d] = { host = host, port = math.floor(port) };
				policy.allowed[d] = true;
			else
				module:log("warn", "Ignoring invalid route in appliance_federation_routes: %s",
					tostring(domain));
			end
		end
	end
	memo = { enabled = enabled, domains = domains, routes = routes, policy = policy };
	return policy;
end

-- Is federation with `domain` allowed? Returns true, or false and the reason.
local function check(domain)
	local policy = current_policy();
	if not policy.enabled then
		return false, "federation is disabled";
	end
	local d = normalize(domain);
	if not d or not policy.allowed[d] then
		return false, "the domain is neither listed nor routed";
	end
	return true;
end

local function refusal_text(domain)
	return ("Federation with %s is not allowed by this server's policy"):format(
		tostring(domain or "this domain"));
end

--- Outgoing stanzas

local subscription_types = { subscribe = true, subscribed = true, unsubscribe = true,
	unsubscribed = true };

-- Stanzas that get an error reply: messages, iq requests and subscription presences. Other
-- presences (broadcasts, probes) are dropped silently, as a client cannot act on them.
local function wants_bounce(stanza)
	local t = stanza.attr.type;
	if stanza.attr.xmlns ~= nil or t == "error" then return false; end
	if stanza.name == "message" then return true; end
	if stanza.name == "iq" then return t == "get" or t == "set"; end
	if stanza.name == "presence" then return subscription_types[t] == true; end
	return false;
end

local function on_route_remote(event)
	local from_host, to_host, stanza = event.from_host, event.to_host, event.stanza;
	local ok, why = check(to_host);
	if ok then return; end -- let mod_s2s route it
	module:log("info", "Refused %s from %s to %s: %s", stanza.name, tostring(stanza.attr.from),
		tostring(to_host), why);
	if wants_bounce(stanza) and hosts[from_host] then
		local reply = st.error_reply(stanza, "cancel", "not-allowed", refusal_text(to_host), from_host);
		prosody.core_post_stanza(hosts[from_host], reply);
	end
	return true;
end

--- Incoming streams

local function close_refused(session, domain, why, what)
	module:log("info", "Refused %s s2s %s with %s: %s", session.direction or "?", what,
		tostring(domain or "(unknown domain)"), why);
	session:close({ condition = "policy-violation", text = refusal_text(domain) },
		nil, refusal_text(domain));
end

local function on_stream_features(event)
	local session = event.origin;
	local remote = session.from_host;
	if remote == nil and current_policy().enabled then
		return; -- no 'from': the remote domain is only known at authentication
	end
	local ok, why = check(remote);
	if ok then return; end
	close_refused(session, remote, why, "stream");
	-- mod_s2s sends the features (to the closed session, which discards them) or, if there
	-- are none, logs a warning and closes again: a placeholder keeps the log clean.
	event.features:tag("refused", { xmlns = "urn:xmpp:appliance:federation:0" }):up();
	return true; -- offer nothing else
end

local function on_authenticated(event)
	local ok, why = check(event.host);
	if ok then return; end
	close_refused(event.session, event.host, why, "authentication");
	return true; -- keep mod_s2s from marking the stream authenticated
end

--- Static routes

local original_service_new = service.new;

local function routed_service_new(hostname, service_name, conn_type, extra)
	local policy = current_policy();
	local route = policy.enabled and policy.routes[normalize(hostname) or ""];
	if route then
		if service_name == "xmpp-server" then
			module:log("debug", "Routing %s to %s:%d", hostname, route.host, route.port);
			return basic.new(route.host, route.port, conn_type, extra);
		elseif service_name == "xmpps-server" then
			return manual.new({}, conn_type, extra);
		end
	end
	return original_service_new(hostname, service_name, conn_type, extra);
end

--- Reloads

-- The remote domains a session is for (an incoming one may have authenticated several).
local function remote_domains(session)
	local domains = {};
	if session.direction == "outgoing" then
		domains[#domains + 1] = session.to_host;
	elseif session.direction == "incoming" then
		domains[#domains + 1] = session.from_host;
		for domain in pairs(session.hosts or {}) do
			if domain ~= session.from_host then domains[#domains + 1] = domain; end
		end
	end
	return domains;
end

local function same_route(a, b)
	if a == nil or b == nil then return a == b; end
	return a.host == b.host and a.port == b.port;
end

local applied_routes = {};

local function write_state()
	local digest = configmanager.get("*", "appliance_config_digest");
	if type(digest) ~= "string" then return; end
	local path = prosody.paths.data .. "/" .. STATE_FILE;
	local tmp = path .. ".tmp";
	local f, err = io.open(tmp, "w");
	if not f then
		module:log("warn", "Cannot write %s: %s", tmp, err);
		return;
	end
	f:write(digest, "\n");
	f:close();
	local ok, rename_err = os.rename(tmp, path);
	if not ok then module:log("warn", "Cannot write %s: %s", path, rename_err); end
end

local function enforce()
	local policy = current_policy();
	local seen, sessions = {}, {};
	for _, session in pairs(s2s_sessions) do
		seen[session] = true;
		sessions[#sessions + 1] = session;
	end
	for _, host in pairs(hosts) do
		for _, session in pairs(host.s2sout or {}) do
			if not seen[session] then
				seen[session] = true;
				sessions[#sessions + 1] = session;
			end
		end
	end
	for _, session in ipairs(sessions) do
		local reason;
		if not session.destroyed then
			local domains = remote_domains(session);
			if not policy.enabled then
				module:log("info", "Closing %s s2s session with %s: federation is disabled",
					session.direction or "?", tostring(domains[1] or "(unknown domain)"));
				reason = { condition = "policy-violation", text = refusal_text(domains[1]) };
			end
			for _, domain in ipairs(reason and {} or domains) do
				local ok, why = check(domain);
				if not ok then
					module:log("info", "Closing %s s2s session with %s: %s",
						session.direction or "?", tostring(domain), why);
					reason = { condition = "policy-violation", text = refusal_text(domain) };
					break;
				end
			end
			local d = normalize(domains[1]);
			if not reason and session.direction == "outgoing" and d
					and not same_route(applied_routes[d], policy.routes[d]) then
				module:log("info", "Closing outgoing s2s session to %s: its route changed", d);
				reason = { condition = "reset", text = "The route to this domain changed" };
			end
		end
		if reason then
			if session.conn then
				session:close(reason, nil, reason.text);
			else -- not connected yet (still resolving)
				s2s_destroy_session(session, reason.text);
			end
		end
	end
	applied_routes = policy.routes;
end

module:hook("config-reloaded", function ()
	memo = {};
	enforce();
	write_state();
end, -100); -- after core handlers (e.g. certificates) have run

function module.load()
	service.new = routed_service_new;
	applied_routes = current_policy().routes;
	write_state();
end

function module.unload()
	if service.new == routed_service_new then
		service.new = original_service_new;
	end
end

function module.add_host(host_module)
	host_module:hook("route/remote", on_route_remote, 1000);
	host_module:hook("s2s-stream-features", on_stream_features, 1000);
	host_module:hook("s2s-authenticated", on_authenticated, 1000);
end
