"""`appliance serve` runs the XMPP service as its child: started with it, started again
when it dies (shown by /healthz), stopped with it."""

import json
import os
import signal
import urllib.request
from pathlib import Path

import pytest

from tests.prosody_server import accepts, free_port, prosody_available
from tests.servers import ApplianceProcess
from tests.servers import wait_until as wait


@pytest.fixture(autouse=True)
def _prosody():
    # Never skipped: `make test` installs Prosody, and a missing one must fail loudly.
    assert prosody_available(), "Prosody is not installed: run `make test`, which does"


def health(app) -> dict:
    try:
        with urllib.request.urlopen(app.url + "healthz", timeout=5) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


def pid_of(data: Path) -> int | None:
    try:
        return int((data / "xmpp" / "prosody.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and b"prosody" in Path(
        f"/proc/{pid}/cmdline").read_bytes()



def test_serve_runs_restarts_and_stops_the_xmpp_service(tmp_path):
    data, c2s, s2s = tmp_path / "data", free_port(), free_port()
    env = {"APPLIANCE_XMPP_SUPERVISE": "1", "APPLIANCE_XMPP_C2S_PORT": str(c2s),
           "APPLIANCE_XMPP_S2S_PORT": str(s2s), "APPLIANCE_XMPP_INTERFACE": "127.0.0.1"}
    app = ApplianceProcess(data, env).start()
    try:
        assert any("XMPP service: started" in line for line in app.output), app.output
        assert wait(lambda: accepts("127.0.0.1", c2s) and pid_of(data) is not None, timeout=15)
        first = pid_of(data)
        assert health(app)["checks"]["xmpp"] == "ok"
        config = (data / "xmpp" / "prosody.cfg.lua").read_text()
        assert f'appliance_url = "http://127.0.0.1:{app.url.rsplit(":", 1)[1].rstrip("/")}"' \
            in config
        os.kill(first, signal.SIGKILL)  # it dies: the appliance starts it again
        assert wait(lambda: (pid_of(data) or first) != first and alive(pid_of(data))
                    and accepts("127.0.0.1", c2s), timeout=15)
        checks = health(app)
        assert checks["status"] == "ok" and checks["checks"]["xmpp"] == "ok", checks
        second = pid_of(data)
    finally:
        app.stop()
    assert wait(lambda: not alive(second), timeout=10)  # stopped with the appliance
    assert not accepts("127.0.0.1", c2s)


def test_supervision_can_be_left_to_the_system(tmp_path):
    data, c2s = tmp_path / "data", free_port()
    env = {"APPLIANCE_XMPP_SUPERVISE": "0", "APPLIANCE_XMPP_C2S_PORT": str(c2s)}
    with ApplianceProcess(data, env) as app:
        assert any("not supervised here" in line for line in app.output), app.output
        assert "xmpp" not in health(app)["checks"]
        assert not accepts("127.0.0.1", c2s)
