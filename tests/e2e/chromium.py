"""The headless Chromium (Debian's) the browser tests drive, one per test process."""

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def chromium_path() -> str:
    """Debian's Chromium binary; fail (never skip) when it is not installed."""
    for candidate in ("/usr/lib/chromium/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail("Chromium is not installed: run `make test`, which installs it.")


class Chromium:
    """Playwright and one Chromium, started by the first test that opens a page (so a missing
    Chromium fails that test) and kept for the process's next browser tests, each of which
    gets contexts of its own: its own cookies, storage and cache, as a fresh browser has."""

    def __init__(self):
        self._playwright = None
        self._browser = None

    def new_context(self, **options) -> BrowserContext:
        if self._browser is None or not self._browser.is_connected():
            path = chromium_path()
            self.close()
            self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(executable_path=path, args=ARGS)
        return self._browser.new_context(**options)

    def close(self) -> None:
        if self._browser is not None:
            self._browser.close()
            self._browser = None
        if self._playwright is not None:
            self._playwright.stop()
            self._playwright = None
