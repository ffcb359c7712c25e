"""appliance-hello: an example partner plugin. Everything reaches the host through a hook."""

from pathlib import Path

from appliance import hookimpl
from appliance.config import Setting
from appliance.ui import Tab

from .api import api
from .jobs import COUNT
from .views import bp, hello_cli

__version__ = "1.0.0"


@hookimpl
def appliance_metadata():
    return {
        "title": "Hello",
        "version": __version__,
        "description": "Greetings: an example partner plugin.",
        "min_host_version": "0.1",
        # Read by the page as config["HELLO_HEADING"]; set with APPLIANCE_HELLO_HEADING.
        "settings": [Setting("heading", default="Greetings",
                             help="The heading of the Greetings page")],
    }


@hookimpl
def appliance_blueprints():
    return [bp]


@hookimpl
def appliance_api_blueprints():
    return [api]


@hookimpl
def appliance_nav_tabs():
    return [Tab("Greetings", "hello.index", order=500)]


@hookimpl
def appliance_job_kinds():
    return [COUNT]


@hookimpl
def appliance_cli_commands():
    return [hello_cli]


@hookimpl
def appliance_migrations():
    return str(Path(__file__).parent / "migrations")
