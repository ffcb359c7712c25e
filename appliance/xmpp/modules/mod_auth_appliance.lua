-- mod_auth_appliance: sign-in for the appliance's accounts (Prosody 0.12 auth provider).
--
-- authentication = "appliance" on a VirtualHost. Every sign-in is asked of the appliance
-- over loopback HTTP, which knows each account's state and how its password is checked (a
-- bind against its directory, or the salted hash the admin or user set). Only PLAIN is
-- offered, and mod_saslauth offers it only on an encrypted stream.
--
-- Options (global): appliance_url = "http://127.0.0.1:8080", appliance_secret = "...".
-- The appliance answers {"result": "ok" | "wrong" | "disabled" | "unavailable" | "locked"};
-- "unavailable" (the directory server cannot be reached), "locked" (too many attempts
-- lately) and any failure to reach the appliance itself become SASL temporary-auth-failure,
-- never not-authorized. The client's address goes with each sign-in, for the lock-out.

local async = require "util.async";
local http = require "net.http";
local json = require "util.json";
local new_sasl = require "util.sasl".new;

local base = module:get_option_string("appliance_url");
local secret = module:get_option_string("appliance_secret");
local host = module.host;
local client = http.new({ suppress_errors = true });

local provider = {};

-- Ask the appliance; returns its decoded answer, or nil and a reason.
local function ask(path, body)
	local ok, response = pcall(async.wait_for, client:request(base .. path, {
		method = "POST";
		headers = { ["Content-Type"] = "application/json";
			["Authorization"] = "Bearer " .. secret };
		body = json.encode(body);
	}));
	if not ok or not response then
		return nil, tostring(response);
	end
	if response.code ~= 200 then
		return nil, "HTTP " .. tostring(response.code);
	end
	return json.decode(response.body);
end

-- true (right), false (wrong or disabled: state false when disabled), or nil, "unavailable".
local function check(username, password, ip)
	local answer, err = ask("/xmpp/v1/auth", { user = username; host = host;
		password = password; ip = ip });
	if not answer then
		module:log("warn", "Sign-in of %s@%s: the appliance did not answer (%s)",
			username, host, err);
		return nil, "unavailable";
	end
	local result = answer.result;
	if result == "locked" then
		module:log("info", "Sign-in of %s@%s refused for now: too many attempts", username, host);
	end
	if result == "ok" then return true, true; end
	if result == "disabled" then return false, false; end
	if result == "wrong" then return false, true; end
	return nil, "unavailable";
end

function provider.test_password(username, password)
	return check(username, password) == true;
end

function provider.user_exists(username)
	local exists = module:fire_event("appliance/user-exists", { username = username; host = host });
	return exists ~= false;
end

function provider.get_password() return nil, "passwords are not kept here"; end
function provider.set_password() return nil, "set passwords on the appliance"; end
function provider.create_user() return nil, "accounts are made on the appliance"; end
function provider.delete_user() return nil, "accounts are removed on the appliance"; end
function provider.users() return function() return nil; end; end

-- A SASL handler whose PLAIN check can also end in temporary-auth-failure.
local function handler(session)
	local sasl;
	local ip = session and session.ip or nil;
	sasl = new_sasl(host, {
		plain_test = function(_, username, password)
			local correct, state = check(username, password, ip);
			if correct == nil then
				sasl.temporary = true;
				return false, true;
			end
			return correct, state;
		end;
	});
	local process = sasl.process;
	function sasl:process(message)
		local status, condition, text = process(self, message);
		if status == "failure" and self.temporary then
			self.temporary = nil;
			return "failure", "temporary-auth-failure",
				"The directory cannot be reached now: try again in a moment";
		end
		return status, condition, text;
	end
	function sasl.clean_clone() return handler(session); end
	return sasl;
end

function provider.get_sasl_handler(session) return handler(session); end

module:provides("auth", provider);
