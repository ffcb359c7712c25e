"""The build step that makes the front-end files the pages use part of the package.

htmx and uPlot (the home page's charts) come from the npm registry, pinned in package.json
and package-lock.json, and are not kept in git. `make assets` fetches them into
appliance/static/vendor/; a wheel or an editable install built with pip instead runs the
same fetch here, before the package's files are collected, so the installed appliance
serves them. axe-core, a dev dependency for the browser
tests, is never part of the package.
"""

import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# Where each file goes in the package, and where npm puts it.
VENDOR = {"appliance/static/vendor/htmx.min.js": "node_modules/htmx.org/dist/htmx.min.js",
          "appliance/static/vendor/uPlot.iife.min.js": "node_modules/uplot/dist/uPlot.iife.min.js",
          "appliance/static/vendor/uPlot.min.css": "node_modules/uplot/dist/uPlot.min.css"}


def fetch_assets(root: Path = ROOT, required: bool = True) -> None:
    """Fetch the VENDOR files that are missing under `root`, with npm, as `make assets` does.
    Without npm: stop the build when `required` (a wheel without them is broken), else warn
    (an editable install, which `make assets` completes; the appliance also says what is
    missing when it starts)."""
    missing = [dest for dest in VENDOR if not (root / dest).is_file()]
    if not missing:
        return
    npm = shutil.which("npm")
    if npm is None or not (root / "package-lock.json").is_file():
        message = (f"{', '.join(missing)} missing, and npm (or package-lock.json) is not "
                   "there to fetch it: run `make assets` in the source tree.")
        if required:
            raise SystemExit(message)
        print(f"warning: {message}")
        return
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=root,
                   check=True)
    for dest in missing:
        (root / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / VENDOR[dest], root / dest)


class BuildWithAssets(build_py):
    def run(self):
        fetch_assets(required=not getattr(self, "editable_mode", False))
        super().run()


setup(cmdclass={"build_py": BuildWithAssets})
