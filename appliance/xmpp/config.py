"""The Prosody configuration file: `XmppConfig` and `render()`, with Lua quoting.

Federation policy (allow-list, static routes) is enforced by the packaged Prosody module
`mod_appliance_federation` (see prosody/), which reads the options written here.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


#: The directory holding the Prosody modules (its plugin_paths).
MODULE_DIR = Path(__file__).resolve().parent / "modules"
#: Written by the module into data_path once a (re)loaded config is in force.
STATE_FILE = "appliance_federation.applied"
PIDFILE = "prosody.pid"
CERTS_DIR = "certs"  # Prosody's certificate directory (unused: the ssl option is explicit)
LOGFILE = "prosody.log"

MODULES = ("roster", "saslauth", "tls", "dialback", "disco", "ping", "presence", "private",
           "vcard_legacy", "carbons", "blocklist", "time", "uptime", "version", "posix")


@dataclass
class XmppConfig:
    """Everything the appliance decides about its Prosody instance."""

    domain: str
    c2s_port: int = 5222
    s2s_port: int = 5269
    interfaces: list[str] = field(default_factory=lambda: ["127.0.0.1"])
    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""  # CA bundle to verify remote servers; empty: the system's
    data_dir: str = field(kw_only=True)  # Prosody's data_path, pidfile and log (required)
    federation_enabled: bool = False
    domains: list[str] = field(default_factory=list)
    routes: dict[str, tuple[str, int]] = field(default_factory=dict)
    admin_shell: bool = True
    run_as_root: bool = field(default_factory=lambda: os.geteuid() == 0)
    # The client service: the enterprises' IM domains, whose users sign in through the
    # appliance at link_url (mod_auth_appliance) and get its directory as their roster
    # (mod_appliance_client); none without a link.
    hosts: list[str] = field(default_factory=list)
    link_url: str = ""
    link_secret: str = field(default="", repr=False)


def lua_string(value: str) -> str:
    """`value` as a Lua string literal: quotes, backslashes and control characters escaped."""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\{code:03d}")  # three digits: a following digit cannot extend it
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def lua_unstring(literal: str) -> str:
    """Inverse of `lua_string` (only what it produces)."""
    return re.sub(r'\\(\d{3}|.)',
                  lambda m: chr(int(m[1])) if m[1].isdigit() else m[1], literal[1:-1])


def _lua_port(value: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError(f"not a TCP port: {value!r}")
    return str(value)


def _lua_list(values: list[str]) -> str:
    return "{ " + ", ".join(lua_string(v) for v in values) + " }"


def _lua_bool(value: bool) -> str:
    return "true" if value else "false"


def render(cfg: XmppConfig) -> str:
    """The whole Prosody configuration file (Lua) for `cfg`."""
    if not cfg.domain:
        raise ValueError("the XMPP domain is required")
    if not cfg.data_dir:
        raise ValueError("data_dir is required")
    if not cfg.interfaces:
        raise ValueError("at least one interface is required")
    data = Path(cfg.data_dir)
    ssl = [f"certificate = {lua_string(cfg.cert_file)}"] if cfg.cert_file else []
    if cfg.key_file:
        ssl.append(f"key = {lua_string(cfg.key_file)}")
    if cfg.ca_file:
        ssl.append(f"cafile = {lua_string(cfg.ca_file)}")
    client = bool(cfg.link_url)
    modules = [*MODULES, *(["admin_shell"] if cfg.admin_shell else []), "appliance_federation",
               *(["appliance_client"] if client else [])]
    routes = "".join(
        f" [{lua_string(domain)}] = {{ host = {lua_string(host)}, port = {_lua_port(port)} }};"
        for domain, (host, port) in sorted(cfg.routes.items()))
    body = "\n".join([
        "-- Prosody configuration written by the appliance: changes here are overwritten.",
        "",
        "daemonize = false",
        f"pidfile = {lua_string(str(data / PIDFILE))}",
        f"data_path = {lua_string(str(data))}",
        f"log = {{ info = {lua_string(str(data / LOGFILE))} }}",
        f"plugin_paths = {{ {lua_string(str(MODULE_DIR))} }}",
        f"certificates = {lua_string(str(data / CERTS_DIR))}",
        f"run_as_root = {_lua_bool(cfg.run_as_root)}",
        "",
        f"modules_enabled = {_lua_list(modules)}",
        "",
        'authentication = "internal_hashed"',
        "allow_registration = false",
        "c2s_require_encryption = true",
        "s2s_require_encryption = true",
        "s2s_secure_auth = true",
        f"ssl = {{ {'; '.join(ssl)} }}",
        "",
        f"c2s_interfaces = {_lua_list(cfg.interfaces)}",
        f"c2s_ports = {{ {_lua_port(cfg.c2s_port)} }}",
        f"s2s_interfaces = {_lua_list(cfg.interfaces)}",
        f"s2s_ports = {{ {_lua_port(cfg.s2s_port)} }}",
        "http_ports = {}",
        "https_ports = {}",
        "",
        f"appliance_federation_enabled = {_lua_bool(cfg.federation_enabled)}",
        f"appliance_federation_domains = {_lua_list(cfg.domains)}",
        f"appliance_federation_routes = {{{routes} }}",
        "",
        *([f"appliance_url = {lua_string(cfg.link_url)}",
           f"appliance_secret = {lua_string(cfg.link_secret)}",
           f"appliance_hosts = {_lua_list(cfg.hosts)}", ""] if client else []),
    ])
    digest = hashlib.sha256(body.encode()).hexdigest()
    hosts = "".join(f'\nVirtualHost {lua_string(h)}\n    authentication = "appliance"\n'
                    for h in (cfg.hosts if client else []))
    return (f"{body}appliance_config_digest = {lua_string(digest)}\n\n"
            f"VirtualHost {lua_string(cfg.domain)}\n{hosts}")


def read_option(text: str, name: str) -> str | None:
    """A top-level string option of a config written by `render()`."""
    m = re.search(rf'^{name} = ("(?:[^"\\]|\\.)*")$', text, re.MULTILINE)
    return lua_unstring(m[1]) if m else None

