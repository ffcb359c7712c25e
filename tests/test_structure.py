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


def _catches_invalid(handler: ast.ExceptHandler) -> bool:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any((isinstance(k, ast.Name) and k.id in ("Invalid", "Conflict"))
               or (isinstance(k, ast.Attribute) and k.attr in ("Invalid", "Conflict"))
               for k in kinds if k is not None)


def _route_modules():
    """Modules that define pages or API operations (they use a blueprint's decorators)."""
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        routes = any(isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)
                     and d.func.attr in ("route", "get", "post", "put", "delete", "op")
                     for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
                     for d in node.decorator_list)
        if routes:
            yield path, tree


def test_views_and_api_leave_broken_rules_to_the_one_handler():
    """Views and API operations do not catch Invalid: the host's handler answers 422/409 or
    shows the form again (appliance.ui.on_invalid)."""
    found = [path for path, _ in _route_modules()]
    assert len(found) > 15  # the check sees the route modules
    offenders = [f"{path.relative_to(PACKAGE)}:{node.lineno}" for path, tree in _route_modules()
                 for node in ast.walk(tree)
                 if isinstance(node, ast.ExceptHandler) and node.type is not None
                 and _catches_invalid(node)]
    assert offenders == [], "let Invalid reach the host's handler (ui.on_invalid for forms)"


def test_the_invalid_check_sees_a_catch():
    tree = ast.parse("try:\n    pass\nexcept (ValueError, validation.Invalid):\n    pass\n")
    handler = next(n for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler))
    assert _catches_invalid(handler)
