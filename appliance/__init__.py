"""The appliance host: the app factory and the marker plugins use for their hooks."""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("appliance")

from appliance.app import create_app  # noqa: E402

__all__ = ["create_app", "hookimpl", "__version__"]
