"""The appliance host: the app factory and the marker plugins use for their hooks."""

from appliance.app import create_app
from appliance.hookspecs import hookimpl
from appliance.version import __version__

__all__ = ["create_app", "hookimpl", "__version__"]
