"""Left out means absent, and says so: a page or API call under a plugin the profile (or
APPLIANCE_DISABLE_PLUGINS) leaves out answers 404 naming what left it out, instead of a
bare "not found"."""

from appliance.api import PREFIX


def _title(name: str) -> str:
    return name.replace("_", " ").capitalize()


def left_out(path: str, plugins) -> dict | None:
    """What to say about `path` when its first segment (after /api/v1 for the API) is the
    URL prefix of a blocked plugin (`/<name>`, underscores as hyphens): the plugin's name,
    what blocked it and a sentence; None for any other path."""
    rel = path.removeprefix(PREFIX) if path.startswith(PREFIX + "/") else path
    first = rel.lstrip("/").split("/", 1)[0]
    for name, reason in plugins.blocked.items():
        if first not in (name, name.replace("_", "-")):
            continue
        profile = plugins.profile
        if reason.startswith("profile "):
            by = f"the profile {profile.title} ({profile.name})"
        else:
            by = f"{reason} on this appliance (profile {profile.title})"
        return {"plugin": name, "blocked_by": reason, "profile": profile.name,
                "message": f"{_title(name)} is not offered here: {by} leaves the "
                           f"{name} plugin out. Its stored data is kept and comes back "
                           f"when the plugin is enabled again."}
    return None
