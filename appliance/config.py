"""Settings from APPLIANCE_* environment variables, overridable by create_app(config)."""

import os
import pwd
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULTS = {
    "LOGIN_MAX_FAILURES": 5,  # per username within LOGIN_LOCK_SECONDS
    "LOGIN_LOCK_SECONDS": 900,
    "LOGIN_FAIL_DELAY": 0.5,  # seconds added to every failed login
    "PASSWORD_HASH": "scrypt",  # werkzeug's method for new password hashes (tests: a cheap one)
    "PAGE_SIZE": 50,
    "JOB_WORKERS": 2,
    "SCHEDULER_INTERVAL": 30,  # seconds between looks for due schedules
    "ROLE": "all",  # what `serve` does: "web" (pages, API), "worker" (jobs), "all" (both)
    "JOB_POLL_SECONDS": 2,  # how often a worker looks for runs other processes queued
    "JOB_HEARTBEAT_SECONDS": 10,  # how often a process stamps the runs it runs
    "JOB_STALE_BEATS": 3,  # a run not stamped for this many beats is interrupted
    "BEHIND_TLS": False,
    "HOSTNAME": "",  # this appliance's FQDN as peers know it; default: the machine's FQDN
    "TIMEZONE": "",  # schedules are read in this zone; default: the machine's zone
    "PEER_CA_FILE": "",  # CA bundle that peer certificates are checked with; default: system
    "PEER_HOSTS": "",  # "name=address,..." for peers not in DNS, like /etc/hosts
    "PEER_TIMEOUT": 10,
    "XMPP_CONFIG": "",  # the embedded Prosody's config file; default: <data dir>/xmpp/
    "XMPP_PROSODYCTL": "prosodyctl",
    "XMPP_PROSODY": "prosody",
    "XMPP_DOMAIN": "",  # the first XMPP domain; default: HOSTNAME
    "XMPP_HOSTS": "",  # "domain=address:port,..." for federated domains not in DNS
    "XMPP_SUPERVISE": True,  # `appliance serve` runs Prosody as its child (off: a unit does)
    "XMPP_LINK_URL": "",  # where Prosody asks about sign-ins; `serve` sets it when supervising
    "XMPP_SIGNIN_TIMEOUT": 5,  # seconds a sign-in waits for a directory server
    "XMPP_INTERFACE": "",  # where Prosody listens ("*": all); set, it overrides the tab's
    "XMPP_C2S_PORT": 0,  # the client port; set, it overrides the Federation tab's
    "XMPP_S2S_PORT": 0,  # the server-to-server port; set, it overrides the Federation tab's
    "MAX_BODY_MB": 4,  # any request body: forms and API calls
    "MAX_UPLOAD_MB": 256,  # a file upload (bulk import), streamed to disk
    "DB_BUSY_SECONDS": 5,  # how long a request waits for a locked database, then 503
    "IMPORT_DIR": "",  # the only place files an admin names are read from; <data dir>/import
    "SESSION_IDLE_MINUTES": 60,  # a login session unused this long ends
    "SESSION_MAX_HOURS": 12,  # and any login session ends this long after the login
    "TRACE_HOOKS": False,  # log every hook call (logger appliance.hooks, level DEBUG)
}

#: Settings read as numbers from APPLIANCE_<name>, with their allowed range.
NUMBERS = {
    "PEER_TIMEOUT": (float, 0.1, 600),
    "MAX_BODY_MB": (float, 0.01, 1024),
    "MAX_UPLOAD_MB": (float, 0.01, 65536),
    "DB_BUSY_SECONDS": (float, 0, 600),
    "SESSION_IDLE_MINUTES": (float, 1, 1440),
    "SESSION_MAX_HOURS": (float, 0.1, 720),
    "XMPP_C2S_PORT": (int, 1, 65535),
    "XMPP_SIGNIN_TIMEOUT": (float, 0.5, 60),
    "XMPP_S2S_PORT": (int, 1, 65535),
    "SCHEDULER_INTERVAL": (float, 0.05, 3600),
    "JOB_POLL_SECONDS": (float, 0.05, 300),
    "JOB_HEARTBEAT_SECONDS": (float, 0.05, 300),
    "JOB_STALE_BEATS": (int, 2, 1000),
}

#: What a process does (APPLIANCE_ROLE, `serve --role`): serve pages and run jobs, or one.
ROLES = ("all", "web", "worker")


class SettingError(Exception):
    """A setting or a directory the appliance cannot start with; the message says how to fix it."""


@dataclass(frozen=True)
class Setting:
    """A setting a plugin declares in its metadata (`"settings": [Setting(...), ...]`).

    Plugin `hello`'s setting `greeting` is the config key HELLO_GREETING: create_app's
    config, else the variable APPLIANCE_HELLO_GREETING, else `default`. A variable is read
    as the default's type (bool, int, float, else str). A `required` setting left empty
    stops the start; a `secret` one is never shown.
    """

    name: str
    default: object = None
    required: bool = False
    secret: bool = False
    help: str = ""

    def key(self, plugin: str) -> str:
        return f"{plugin}_{self.name}".upper()

    def resolve(self, plugin: str, cfg: dict, env=os.environ) -> tuple[object, str]:
        """(value, where it came from: "config", "environment" or "default")."""
        key = self.key(plugin)
        if cfg.get(key) not in (None, ""):
            return cfg[key], "config"
        raw = env.get(f"APPLIANCE_{key}", "")
        if raw == "":
            return self.default, "default"
        return self._convert(key, raw), "environment"

    def _convert(self, key: str, raw: str) -> object:
        kind = type(self.default)
        if kind is bool:
            word = raw.strip().lower()
            if word in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return word in ("1", "true", "yes", "on")
            raise SettingError(f"APPLIANCE_{key} must be true or false, not {raw[:20]!r}")
        if kind in (int, float):
            try:
                return kind(raw)
            except ValueError:
                raise SettingError(f"APPLIANCE_{key} must be {'a whole' if kind is int else 'a'} "
                                   f"number, not {raw[:20]!r}") from None
        return raw


SETTING_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


def from_env(env=os.environ) -> dict:
    """Read the APPLIANCE_* variables into a config dict."""
    cfg = dict(DEFAULTS)
    cfg["DATA_DIR"] = env.get("APPLIANCE_DATA_DIR", "instance")
    for key in ("DATABASE_URL", "PROFILE", "DISABLE_PLUGINS", "SECRET_KEY", "TRUSTED_PROXIES",
                "HOSTNAME", "TIMEZONE", "PEER_CA_FILE", "PEER_HOSTS", "XMPP_CONFIG",
                "XMPP_PROSODYCTL", "XMPP_PROSODY", "XMPP_DOMAIN", "XMPP_HOSTS", "IMPORT_DIR",
                "XMPP_INTERFACE", "XMPP_LINK_URL"):
        if env.get(f"APPLIANCE_{key}"):
            cfg[key] = env[f"APPLIANCE_{key}"]
    for key, (kind, lo, hi) in NUMBERS.items():
        raw = env.get(f"APPLIANCE_{key}")
        if not raw:
            continue
        try:
            value = kind(raw)
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:
            raise SettingError(f"APPLIANCE_{key} must be a number from {lo} to {hi}, "
                               f"not {raw[:20]!r}")
        cfg[key] = value
    if role := env.get("APPLIANCE_ROLE", "").strip().lower():
        if role not in ROLES:
            raise SettingError(f"APPLIANCE_ROLE must be {', '.join(ROLES)}, not {role[:20]!r}")
        cfg["ROLE"] = role
    for key in ("BEHIND_TLS", "TRACE_HOOKS", "XMPP_SUPERVISE"):
        if env.get(f"APPLIANCE_{key}"):
            cfg[key] = env[f"APPLIANCE_{key}"].lower() in ("1", "true", "yes")
    return cfg


def timezone(cfg: dict) -> ZoneInfo:
    """The appliance's time zone: TIMEZONE, else the machine's (TZ, /etc/localtime), else UTC."""
    name = cfg.get("TIMEZONE") or os.environ.get("TZ", "").lstrip(":")
    if not name:
        local = Path("/etc/localtime")
        if local.is_symlink() and "zoneinfo/" in str(local.resolve()):
            name = str(local.resolve()).split("zoneinfo/", 1)[1]
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def prepare_data_dir(raw: str) -> Path:
    """The data directory, created (mode 0700) if missing; SettingError when unusable."""
    path = Path(raw).expanduser().resolve()
    user = _user()
    fix = f"create it as {user} or set APPLIANCE_DATA_DIR to a directory {user} can write"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingError(f"Data directory {path} is missing and cannot be created "
                           f"({exc.strerror}): {fix}") from None
    if not path.is_dir():
        raise SettingError(f"Data directory {path} is not a directory: {fix}")
    try:  # a real write: permission bits do not tell root about a read-only file system
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise SettingError(f"Data directory {path} is not writable ({exc.strerror}): "
                           f"run `chown -R {user} {path}` or {fix}") from None
    for name in ("appliance.db", "secret_key"):
        f = path / name
        if f.exists() and not os.access(f, os.R_OK | os.W_OK):
            raise SettingError(f"{f} is not readable and writable by {user}: "
                               f"run `chown {user} {f}`")
    return path


def prepare_import_dir(cfg: dict) -> Path:
    """The import directory (IMPORT_DIR, else <data dir>/import), created with mode 0700."""
    path = Path(cfg.get("IMPORT_DIR") or Path(cfg["DATA_DIR"]) / "import").expanduser()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingError(f"Import directory {path} is missing and cannot be created "
                           f"({exc.strerror}): create it as {_user()} or set "
                           "APPLIANCE_IMPORT_DIR") from None
    if not path.is_dir():
        raise SettingError(f"Import directory {path} is not a directory: set "
                           "APPLIANCE_IMPORT_DIR to one")
    return path.resolve()


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def secret_key(data_dir: Path) -> str:
    """Return the key stored in the data dir, creating it (mode 0600) on first start.

    Processes starting together on a new data dir all end up with the one key: it is
    written whole to a file of its own, then linked into place (which fails if another
    process got there first, whose key is then read)."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".secret_key-")  # mode 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
    return path.read_text().strip()


def database_url(cfg: dict) -> str:
    """Return the configured database URL, or the SQLite file in the data dir."""
    if cfg.get("DATABASE_URL"):
        return cfg["DATABASE_URL"]
    return "sqlite:///" + str((Path(cfg["DATA_DIR"]) / "appliance.db").resolve())
