"""appliance-hello: an example partner plugin. Everything reaches the host through a hook."""

from pathlib import Path

from appliance.config import Setting
from appliance.plugins import declare
from appliance.ui import Tab

from .api import api
from .jobs import COUNT
from .views import bp, hello_cli

__version__ = "1.0.0"

# The hooks that only return something, declared as data: each becomes an @hookimpl function
# of this module (appliance_metadata, appliance_blueprints, ...). A hook with arguments (an
# event such as appliance_enterprise_deleted) is written out as an @hookimpl function here.
declare(
    __name__,
    title="Hello",
    version=__version__,
    description="Greetings: an example partner plugin.",
    min_host_version="0.1",
    # Read by the page as config["HELLO_HEADING"]; set with APPLIANCE_HELLO_HEADING.
    settings=[Setting("heading", default="Greetings", help="The heading of the Greetings page")],
    blueprints=[bp],
    api_blueprints=[api],
    nav_tabs=[Tab("Greetings", "hello.index", order=500)],
    job_kinds=[COUNT],
    cli_commands=[hello_cli],
    migrations=Path(__file__).parent / "migrations",
)
