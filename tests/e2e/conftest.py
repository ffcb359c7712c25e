"""Fixtures of the browser tests."""

import pytest

from tests.e2e.chromium import Chromium


@pytest.fixture(scope="session")
def chromium():
    """This test process's Chromium (see Chromium), closed at the end of the session."""
    browser = Chromium()
    yield browser
    browser.close()
