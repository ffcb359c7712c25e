"""The plugin manager: core and built-in plugins by dotted path, partner plugins by entry
point, profiles and the block list, plugin settings, and the listing `appliance plugins`
prints. Every hook is called through pluggy, so hook wrappers and tracing see each call.
`declare` gives a plugin module the hooks that only return a value, from data."""

import copy
import importlib
import inspect
import logging
import os
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from importlib.resources import files

import pluggy

from appliance import hookspecs
from appliance.audit import MASK
from appliance.config import DEFAULTS, SETTING_NAME, Setting
from appliance.hookspecs import hookimpl
from appliance.version import __version__

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "appliance.plugins"

# Always on: they cannot be blocked.
CORE_PLUGINS = (
    "appliance.core.home",
    "appliance.core.enterprises",
    "appliance.core.directory",
    "appliance.core.accounts",
    "appliance.core.audit",
    "appliance.core.jobs",
    "appliance.core.tokens",
    "appliance.core.client",
)
# Feature plugins a profile or APPLIANCE_DISABLE_PLUGINS may leave out.
BUILTIN_PLUGINS = (
    "appliance.plugins.peering",
    "appliance.plugins.federation",
    "appliance.plugins.sync",
    "appliance.plugins.network_elements",
)


#: The keys of appliance_metadata's answer that `declare` takes as keyword arguments.
METADATA = ("title", "version", "description", "min_host_version", "settings")


def declare(module: str, **parts) -> None:
    """Give the plugin module named `module` (pass `__name__`) its usual parts as data.

    The metadata keys (title, version, description, min_host_version, settings) make its
    appliance_metadata; every other keyword `x` names a hook without arguments,
    appliance_x (blueprints, api_blueprints, nav_tabs, dashboard_panels, account_panels, job_kinds,
    cli_commands, migrations, pbx_connectors, flow_connectors), that returns the value
    given (a path for migrations is returned as a str). Each becomes an ordinary @hookimpl
    function of the module, which pluggy registers and calls like one written out: hook
    wrappers and tracing see it, the listing names it, blocking the plugin leaves it out.
    Hooks with arguments (events) stay @hookimpl functions written in the module.
    """
    namespace = vars(sys.modules[module])
    meta = {k: parts.pop(k) for k in METADATA if k in parts}
    for key, value in (({"metadata": meta} if meta else {}) | parts).items():
        name = f"appliance_{key}"
        spec = getattr(hookspecs, name, None)
        if spec is None or inspect.signature(spec).parameters:
            raise TypeError(f"declare: {key}= names no hook without arguments ({module})")
        if name in namespace:
            raise TypeError(f"{module} both defines and declares {name}")
        namespace[name] = _returning(name, str(value) if isinstance(value, os.PathLike)
                                     else value, module)


def _returning(name: str, value, module: str):
    def impl():
        return copy.copy(value)  # a caller changing its answer changes no other's
    impl.__name__ = impl.__qualname__ = name
    impl.__module__ = module
    impl.__doc__ = f"Declared with appliance.plugins.declare in {module}."
    return hookimpl(impl)


class PluginError(Exception):
    """A configuration the host refuses to start with (unknown profile, blocking a core plugin)."""


@dataclass
class PluginInfo:
    name: str
    version: str
    source: str  # "builtin", "entry point" or "extra" (create_app's EXTRA_PLUGINS)
    core: bool
    enabled: bool
    blocked_by: str | None = None
    hooks: list[str] = field(default_factory=list)
    title: str = ""
    description: str = ""
    settings: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Profile:
    name: str
    title: str
    block: list[str]
    flags: dict


def load_profile(name: str) -> Profile:
    """Read appliance/profiles/<name>.toml."""
    path = files("appliance") / "profiles" / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(profile_names()))
        raise PluginError(f"Unknown profile {name!r}; known profiles: {known}")
    data = tomllib.loads(path.read_text())
    return Profile(name, data.get("title", name), list(data.get("block", [])),
                   dict(data.get("flags", {})))


def profile_names() -> list[str]:
    return [p.name.removesuffix(".toml") for p in (files("appliance") / "profiles").iterdir()
            if p.name.endswith(".toml")]


def _version_tuple(v: str) -> tuple:
    return tuple(int(p) if p.isdigit() else 0 for p in v.split(".")[:3])


class Plugins:
    """The loaded plugin manager plus what was left out and why."""

    def __init__(self, profile: str = "standard", disable: str | list[str] = "",
                 extra_plugins: Iterable[tuple[str, object]] = (), trace: bool = False):
        self.profile = load_profile(profile)
        extra = [n.strip() for n in disable.split(",")] if isinstance(disable, str) else disable
        self.blocked: dict[str, str] = {n: f"profile {profile}" for n in self.profile.block}
        for name in filter(None, extra):
            self.blocked.setdefault(name, "APPLIANCE_DISABLE_PLUGINS")
        core_names = {p.rsplit(".", 1)[1] for p in CORE_PLUGINS}
        refused = sorted(core_names & set(self.blocked))
        if refused:
            raise PluginError(
                f"Core plugin(s) {', '.join(refused)} cannot be blocked "
                f"(blocked by {', '.join(self.blocked[n] for n in refused)})")
        self.pm = pluggy.PluginManager("appliance")
        self.pm.add_hookspecs(hookspecs)
        if trace:
            self.pm.trace.root.setwriter(logging.getLogger("appliance.hooks").debug)
            self.pm.enable_tracing()
        for name, reason in self.blocked.items():
            self.pm.set_blocked(name)
            log.info("plugin %s blocked by %s", name, reason)
        self.infos: dict[str, PluginInfo] = {}
        self.declared: dict[str, list[Setting]] = {}
        for path in CORE_PLUGINS + BUILTIN_PLUGINS:
            self._load_builtin(path, core=path in CORE_PLUGINS)
        self._load_entry_points()
        self._load_extra(extra_plugins)
        # Read once every plugin (a test's hook wrapper too) is registered, so all see it.
        for name in list(self.infos):
            if self.pm.get_plugin(name) is not None:
                self._describe(name)
        unknown = sorted(set(self.blocked) - set(self.infos))
        for name in unknown:
            log.warning("APPLIANCE_DISABLE_PLUGINS names %r, which is not installed", name)

    @property
    def hook(self):
        return self.pm.hook

    @property
    def flags(self) -> dict:
        return self.profile.flags

    def enabled(self, name: str) -> bool:
        info = self.infos.get(name)
        return bool(info and info.enabled)

    def _load_builtin(self, dotted: str, core: bool) -> None:
        name = dotted.rsplit(".", 1)[1]
        module = importlib.import_module(dotted)
        self._add(name, module, "builtin", core, __version__)

    def _load_entry_points(self) -> None:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in self.infos:
                log.warning("entry point %s ignored: a plugin of that name is loaded", ep.name)
                continue
            version = ep.dist.version if ep.dist else "?"
            if ep.name in self.blocked:
                self.infos[ep.name] = PluginInfo(ep.name, version, "entry point", False, False,
                                                 self.blocked[ep.name])
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken partner plugin must not take the host down
                log.exception("plugin %s failed to load", ep.name)
                self.infos[ep.name] = PluginInfo(ep.name, version, "entry point", False, False,
                                                 f"failed to load: {exc}")
                continue
            self._add(ep.name, plugin, "entry point", False, version)

    def _load_extra(self, extra: Iterable[tuple[str, object]]) -> None:
        """Register plugin objects handed over directly (tests, embedding), after the rest."""
        for name, plugin in extra:
            if name in self.infos:
                raise PluginError(f"EXTRA_PLUGINS names {name!r}, which is already loaded")
            self._add(name, plugin, "extra", False, "0")

    def _add(self, name: str, plugin, source: str, core: bool, version: str) -> None:
        info = PluginInfo(name, version, source, core, False, title=name)
        self.infos[name] = info
        if name in self.blocked:  # never called, not even for its metadata
            info.blocked_by = self.blocked[name]
            info.hooks = sorted(h for h in dir(plugin) if h.startswith("appliance_"))
            return
        self.pm.register(plugin, name=name)
        info.enabled = True
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin))

    def _describe(self, name: str) -> None:
        """Take a registered plugin's metadata; unregister it if it needs a newer host."""
        info, meta = self.infos[name], self.metadata(name)
        info.version = str(meta.get("version", info.version))
        info.title = meta.get("title", name)
        info.description = meta.get("description", "")
        need = meta.get("min_host_version")
        if need and _version_tuple(__version__) < _version_tuple(str(need)):
            self.pm.unregister(name=name)
            info.enabled, info.hooks = False, []
            info.blocked_by = f"requires appliance >= {need} (this is {__version__})"
            return
        declared = list(meta.get("settings") or [])
        for s in declared:
            if not isinstance(s, Setting) or not SETTING_NAME.match(s.name):
                raise PluginError(f"Plugin {name} declares a setting that is not "
                                  f"appliance.config.Setting(name) with a lower-case name: {s!r}")
            if s.key(name) in DEFAULTS:
                raise PluginError(f"Plugin {name}'s setting {s.name} would be the host's "
                                  f"setting {s.key(name)}")
        self.declared[name] = declared

    def configure(self, cfg: dict, env=os.environ) -> dict:
        """Resolve every enabled plugin's declared settings (see appliance.config.Setting)
        and list them; return {config key: value}. A required setting left empty is a
        PluginError naming it."""
        values = {}
        for name, declared in self.declared.items():
            if not self.enabled(name):
                continue
            listed = []
            for s in declared:
                key = s.key(name)
                value, source = s.resolve(name, cfg, env)
                if s.required and value in (None, ""):
                    raise PluginError(f"Plugin {name} needs the setting {key}: set "
                                      f"APPLIANCE_{key}" + (f" ({s.help})" if s.help else ""))
                values[key] = value
                shown = MASK if s.secret and value not in (None, "") else value
                listed.append({"name": s.name, "key": key, "env": f"APPLIANCE_{key}",
                               "value": shown, "source": source,
                               "default": MASK if s.secret and s.default else s.default,
                               "required": s.required, "secret": s.secret, "help": s.help})
            self.infos[name].settings = listed
        return values

    def listing(self) -> list[PluginInfo]:
        return sorted(self.infos.values(), key=lambda i: (not i.core, i.name))

    def metadata(self, name: str) -> dict:
        """What a loaded plugin's appliance_metadata returns ({} if it is not loaded)."""
        if self.pm.get_plugin(name) is None:
            return {}
        return dict(self.call_one("appliance_metadata", name) or {})

    def call_one(self, hook_name: str, name: str, **kwargs) -> object:
        """Call one plugin's implementation of a hook (None if it has none) through pluggy,
        with every hook wrapper around it."""
        plugin = self.pm.get_plugin(name)
        answering = [i.plugin for i in getattr(self.pm.hook, hook_name).get_hookimpls()
                     if not (i.wrapper or i.hookwrapper)]
        if plugin is None or plugin not in answering:
            return None
        others = [p for p in answering if p is not plugin]
        results = self.pm.subset_hook_caller(hook_name, others)(**kwargs)
        return results[0] if results else None

    def call_each(self, hook_name: str, **kwargs) -> list[tuple[str, object]]:
        """Call a hook once per plugin implementing it, through pluggy, and return (plugin
        name, result) pairs, so results can be attributed (None results are left out)."""
        out = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            if impl.wrapper or impl.hookwrapper:
                continue
            result = self.call_one(hook_name, impl.plugin_name, **kwargs)
            if result is not None:
                out.append((impl.plugin_name, result))
        return out
