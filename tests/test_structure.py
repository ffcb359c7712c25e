"""Plugins reach the host only through hooks and shared services; modules stay small."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "appliance"
PLUGINS = PACKAGE / "plugins"
JOB_MODELS = {"JobRun", "JobSchedule"}
MAX_LINES = 400


def _modules():
    return sorted(PLUGINS.rglob("*.py"))


def test_plugins_do_not_read_the_host_by_its_extension_key():
    offenders = [str(p.relative_to(PLUGINS)) for p in _modules()
                 if "extensions[" in p.read_text()]
    assert offenders == [], "use appliance.host.host() instead"


def test_plugins_do_not_import_job_models():
    offenders = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "appliance.models":
                names = {a.name for a in node.names} & JOB_MODELS
                if names:
                    offenders.append(f"{path.relative_to(PLUGINS)}: {', '.join(sorted(names))}")
    assert offenders == [], "ask the job service (host().jobs) instead"


def test_the_checks_see_what_they_look_for(tmp_path):
    tree = ast.parse("from appliance.models import JobRun, Account\n")
    node = tree.body[0]
    assert {a.name for a in node.names} & JOB_MODELS == {"JobRun"}


def test_no_module_is_over_400_lines():
    over = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            over.append(f"{path.relative_to(PACKAGE)}: {lines}")
    assert over == [], f"split by concern: no module over {MAX_LINES} lines"
