"""Start-up checks its data directory and says in one line what is wrong; what the
appliance writes is readable by its own user only."""

import os
import shutil
import stat
import subprocess

import pytest

from tests import postgres_server
from tests.servers import ApplianceProcess, appliance_command


def _serve(data_dir, wrap: list[str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env["APPLIANCE_DATA_DIR"] = str(data_dir)
    env["APPLIANCE_XMPP_SUPERVISE"] = "0"
    cmd = [appliance_command(), "serve", "--port", "0"]
    if wrap:  # the last word of `wrap` is a shell script the command is appended to
        cmd = [*wrap[:-1], f"{wrap[-1]} {' '.join(cmd)}"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    out = (result.stdout + result.stderr).strip()
    assert "Traceback" not in out
    assert len(out.splitlines()) == 1, out
    return out


def test_a_read_only_data_dir_ends_start_up_with_one_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    if os.geteuid() == 0:  # root ignores permission bits: mount a read-only file system
        if not shutil.which("unshare"):
            pytest.fail("unshare (util-linux) is needed to mount a read-only file system")
        result = _serve(data, ["unshare", "-m", "--propagation", "private", "sh", "-c",
                               f"mount -t tmpfs -o ro tmpfs {data} && exec"])
    else:
        data.chmod(0o555)
        result = _serve(data)
    line = _one_line_error(result)
    assert f"Data directory {data} is not writable" in line
    assert "APPLIANCE_DATA_DIR" in line and "chown" in line


def test_a_data_dir_that_cannot_be_created_is_named(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    line = _one_line_error(_serve(tmp_path / "file" / "data"))
    assert f"Data directory {tmp_path / 'file' / 'data'} is missing and cannot be created" in line


def test_what_the_appliance_writes_is_its_users_only(tmp_path):
    data = tmp_path / "fresh"  # created by the appliance itself
    proc = ApplianceProcess(data, env={"APPLIANCE_SECRET_KEY": ""})
    data.rmdir()
    with proc:
        pass
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    written = list(data.rglob("*"))
    # (On PostgreSQL the database is not in the data dir.)
    assert {p.name for p in written} >= {"secret_key"} | (
        set() if postgres_server.enabled() else {"appliance.db"})
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
