"""The meta-test: every hookspec is documented in docs/plugins.md and has a test.

A hook `appliance_x` needs a `### appliance_x` heading in the guide's reference section and
a test function named `test_hook_appliance_x` (or `test_hook_appliance_x_...`) somewhere
under tests/.
"""

import ast
import inspect
import re
from pathlib import Path

from appliance import hookspecs

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugins.md"


def hook_names() -> list[str]:
    """The functions of appliance.hookspecs marked with @hookspec."""
    return sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
                  if hasattr(fn, "appliance_spec"))


def documented() -> set[str]:
    return set(re.findall(r"^### (\w+)[ \t]*$", GUIDE.read_text(encoding="utf-8"), re.M))


def function_names() -> set[str]:
    """Every function defined in a file under tests/ (test functions, helpers, methods)."""
    names = set()
    for path in (ROOT / "tests").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names.update(node.name for node in ast.walk(tree)
                     if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))
    return names


def test_hookspecs_are_found():
    assert {"appliance_metadata", "appliance_nav_tabs"} <= set(hook_names())


def test_every_hookspec_is_documented():
    missing = [name for name in hook_names() if name not in documented()]
    assert not missing, (
        f"docs/plugins.md has no '### <name>' heading for: {', '.join(missing)}")


def test_every_documented_hook_exists():
    stale = sorted(n for n in documented() if n.startswith("appliance_") and n not in hook_names())
    assert not stale, f"docs/plugins.md documents hooks that do not exist: {', '.join(stale)}"


def test_every_hookspec_has_a_test():
    tests = function_names()
    missing = [name for name in hook_names()
               if not any(t == f"test_hook_{name}" or t.startswith(f"test_hook_{name}_")
                          for t in tests)]
    assert not missing, (
        f"no test_hook_<name> test under tests/ for: {', '.join(missing)}")
