"""The front-end files the pages need that come from the npm registry (package.json), not
from this repository (htmx; uPlot, which draws the home page's charts): `make assets`
fetches them, and a wheel build does too (setup.py). An appliance started without one says
so in its log and on every page, naming the file, what goes without it and the command that
fetches it."""

import logging
from pathlib import Path

from flask import Flask

log = logging.getLogger(__name__)

# Paths under the static folder, each fetched by FETCH, and what the pages lack without it.
CHARTS = "the home page shows its numbers without their charts"
VENDOR = {"vendor/htmx.min.js": "pages cannot load their panels or forms in place without it",
          "vendor/uPlot.iife.min.js": CHARTS, "vendor/uPlot.min.css": CHARTS}
FETCH = "make assets"


def static_dir(app: Flask) -> Path:
    """Where the app's static files are."""
    return Path(app.static_folder)


def missing(folder: Path) -> list[str]:
    """The VENDOR files absent from `folder`, as `static/<path>`."""
    return [f"static/{name}" for name in VENDOR if not (folder / name).is_file()]


def wire(app: Flask) -> None:
    """Look for the vendor files once, log each missing one, and give every page the list
    (`missing_assets`: (file, what goes without it), shown as a banner by base.html)."""
    gone = missing(static_dir(app))
    for name in gone:
        log.error("The front-end file %s is missing (%s): %s. Fetch it with `%s` in the "
                  "source tree.", name, static_dir(app) / name.removeprefix("static/"),
                  VENDOR[name.removeprefix("static/")], FETCH)
    shown = [(name, VENDOR[name.removeprefix("static/")]) for name in gone]

    @app.context_processor
    def _missing_assets():
        return {"missing_assets": shown}
