"""The front-end files the pages need that come from the npm registry (package.json), not
from this repository: `make assets` fetches them, and a wheel build does too (setup.py).
An appliance started without one says so in its log and on every page, naming the file and
the command that fetches it."""

import logging
from pathlib import Path

from flask import Flask

log = logging.getLogger(__name__)

# Paths under the static folder, each fetched by FETCH.
VENDOR = ("vendor/htmx.min.js",)
FETCH = "make assets"


def static_dir(app: Flask) -> Path:
    """Where the app's static files are."""
    return Path(app.static_folder)


def missing(folder: Path) -> list[str]:
    """The VENDOR files absent from `folder`, as `static/<path>`."""
    return [f"static/{name}" for name in VENDOR if not (folder / name).is_file()]


def wire(app: Flask) -> None:
    """Look for the vendor files once, log each missing one, and give every page the list
    (`missing_assets`, shown as a banner by base.html)."""
    gone = missing(static_dir(app))
    for name in gone:
        log.error("The front-end file %s is missing (%s): pages cannot load their panels "
                  "or forms in place without it. Fetch it with `%s` in the source tree.",
                  name, static_dir(app) / name.removeprefix("static/"), FETCH)

    @app.context_processor
    def _missing_assets():
        return {"missing_assets": gone}
