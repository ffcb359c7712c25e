"""The front-end files from npm: a package build fetches them (setup.py), and an appliance
started without one says which file and which command, in its log and on every page."""

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from flask import url_for

from appliance import assets

ROOT = Path(__file__).resolve().parents[1]
HTMX = "static/vendor/htmx.min.js"
UPLOT = "static/vendor/uPlot.iife.min.js"


def test_an_app_without_htmx_says_which_file_and_the_command(make_app, monkeypatch, caplog,
                                                               tmp_path):
    empty = tmp_path / "static"
    empty.mkdir()
    monkeypatch.setattr(assets, "static_dir", lambda app: empty)
    with caplog.at_level(logging.ERROR, logger="appliance.assets"):
        app = make_app()
    logged = [r.getMessage() for r in caplog.records if r.name == "appliance.assets"]
    assert len(logged) == 3 and all("`make assets`" in m for m in logged)
    assert HTMX in logged[0] and UPLOT in logged[1] and "without their charts" in logged[1]
    page = app.test_client().get("/setup").get_data(as_text=True)  # every page, signed in or not
    assert page.count('id="missing-assets"') == 1
    assert f"missing {HTMX}" in page and "<code>make assets</code>" in page
    assert f"missing {UPLOT}: the home page shows its numbers without their charts" in page


def test_an_app_with_its_files_shows_no_banner(make_app, caplog):
    assert (ROOT / "appliance" / HTMX).is_file(), "run `make assets`"
    with caplog.at_level(logging.ERROR, logger="appliance.assets"):
        app = make_app()
    assert not [r for r in caplog.records if r.name == "appliance.assets"]
    assert "missing-assets" not in app.test_client().get("/setup").get_data(as_text=True)


def test_a_package_build_without_htmx_fetches_it_into_the_package(tmp_path):
    """What `pip wheel .` or `pip install .` runs, in a source tree where `make assets` never
    ran: the built package has the pinned htmx."""
    tree = tmp_path / "src"
    shutil.copytree(ROOT / "appliance", tree / "appliance",
                    ignore=shutil.ignore_patterns("__pycache__", "vendor"))
    for name in ("setup.py", "pyproject.toml", "package.json", "package-lock.json",
                 "README.md"):
        shutil.copy(ROOT / name, tree / name)
    assert not (tree / "appliance" / HTMX).exists()
    env = {**os.environ, "npm_config_prefer_offline": "true"}
    done = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib",
                           str(tmp_path / "lib")], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    built = tmp_path / "lib" / "appliance" / HTMX
    assert built.read_bytes() == (ROOT / "node_modules/htmx.org/dist/htmx.min.js").read_bytes()
    built = tmp_path / "lib" / "appliance" / UPLOT
    assert built.read_bytes() == (ROOT / "node_modules/uplot/dist/uPlot.iife.min.js").read_bytes()


def test_axe_core_is_for_the_tests_only(client):
    """axe-core (a dev dependency) goes to tests/e2e/vendor/, never to what is served."""
    assert (ROOT / "tests" / "e2e" / "vendor" / "axe.min.js").is_file(), "run `make assets`"
    assert not list((ROOT / "appliance").rglob("axe*.js"))
    assert client.get("/static/vendor/axe.min.js").status_code == 404
    assert client.get("/static/vendor/htmx.min.js").status_code == 200


def test_static_urls_carry_their_digest_and_are_kept_a_year(app, tmp_path):
    """A page names each static file with its digest, which a browser may keep a year
    without asking again; an edited file gets a new URL, and the old one is not kept."""
    folder = tmp_path / "static"
    folder.mkdir()
    css = folder / "app.css"
    css.write_text("a { color: red }")
    app.static_folder = str(folder)
    client = app.test_client()
    with app.test_request_context():
        url = url_for("static", filename="app.css")
        assert url_for("static", filename="nothing.css") == "/static/nothing.css"
    assert url.startswith("/static/app.css?v=") and len(url.split("v=")[1]) == 12
    kept = client.get(url)
    assert kept.status_code == 200 and kept.data == b"a { color: red }"
    assert kept.cache_control.max_age == 365 * 24 * 3600 and kept.cache_control.immutable
    assert not kept.cache_control.no_cache
    plain = client.get("/static/app.css")
    assert plain.cache_control.no_cache and plain.cache_control.max_age is None

    css.write_text("a { color: blue; }")
    with app.test_request_context():
        assert (new := url_for("static", filename="app.css")) != url
    assert client.get(new).cache_control.immutable
    stale = client.get(url)
    assert stale.data == b"a { color: blue; }" and not stale.cache_control.immutable
    assert client.get("/static/nothing.css").status_code == 404
