"""The front-end files the pages need that come from the npm registry (package.json), not
from this repository (htmx; uPlot, which draws the home page's charts): `make assets`
fetches them, and a wheel build does too (setup.py). An appliance started without one says
so in its log and on every page, naming the file, what goes without it and the command that
fetches it."""

import hashlib
import logging
import stat
from pathlib import Path

from flask import Flask, request
from werkzeug.security import safe_join

log = logging.getLogger(__name__)

# Paths under the static folder, each fetched by FETCH, and what the pages lack without it.
CHARTS = "the home page shows its numbers without their charts"
VENDOR = {"vendor/htmx.min.js": "pages cannot load their panels or forms in place without it",
          "vendor/uPlot.iife.min.js": CHARTS, "vendor/uPlot.min.css": CHARTS}
FETCH = "make assets"
YEAR = 365 * 24 * 3600


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

    digests: dict[str, tuple[int, int, str]] = {}

    def digest(endpoint: str, filename: str) -> str | None:
        """The first 12 hex digits of the file's SHA-256 (None: no such file), read again
        when its time or size changes."""
        bp = endpoint.rpartition(".")[0]
        folder = app.static_folder if not bp else app.blueprints[bp].static_folder
        path = safe_join(folder, filename) if folder else None
        try:
            st = Path(path).stat() if path else None
        except OSError:
            return None
        if st is None or not stat.S_ISREG(st.st_mode):
            return None
        known = digests.get(path)
        if known is None or known[:2] != (st.st_mtime_ns, st.st_size):
            known = (st.st_mtime_ns, st.st_size,
                     hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12])
            digests[path] = known
        return known[2]

    @app.url_defaults
    def _versioned(endpoint: str, values: dict) -> None:
        """A static file's URL carries its digest (?v=): a changed file has a new URL, so a
        browser may keep each one a year instead of asking again on every page."""
        if _static(endpoint) and "v" not in values \
                and (v := digest(endpoint, values.get("filename", ""))):
            values["v"] = v

    @app.after_request
    def _cached(resp):
        endpoint = request.endpoint or ""
        filename = (request.view_args or {}).get("filename", "")
        if _static(endpoint) and resp.status_code in (200, 304) \
                and request.args.get("v") == digest(endpoint, filename):
            resp.cache_control.no_cache = None
            resp.cache_control.public = True
            resp.cache_control.max_age = YEAR
            resp.cache_control.immutable = True
        return resp


def _static(endpoint: str) -> bool:
    """The app's or a blueprint's static files."""
    return endpoint == "static" or endpoint.endswith(".static")
