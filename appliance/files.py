"""Files the appliance reads on an administrator's say-so: only from the import directory.

An admin types a path (a PBX node's CSV export, say); the appliance opens it with its own
rights, so a path anywhere else (/etc/shadow, the secret key) would hand the admin what
the appliance can read. Every such path goes through `admin_path` (when it is saved) and
`open_admin_file` (when it is read: a symlink may have changed since).
"""

import os
from pathlib import Path
from typing import IO

from flask import current_app

from appliance.validation import Invalid, Rule


def import_dir() -> Path:
    """The import directory: IMPORT_DIR, else <data dir>/import."""
    cfg = current_app.config
    return Path(cfg.get("IMPORT_DIR") or Path(cfg["DATA_DIR"]) / "import")


def refusal(label: str) -> str:
    """Why a path named `label` (a form field's label) is refused."""
    return f"{label} must be inside the import directory {os.path.realpath(import_dir())}"


def _inside(path: str, where: Path) -> bool:
    return path != str(where) and os.path.commonpath([path, where]) == str(where)


def real_path(raw: str) -> Path | None:
    """The real path of `raw` (a relative one is taken inside the import directory) when it
    lies inside the import directory once symlinks are followed; None otherwise."""
    where = Path(os.path.realpath(import_dir()))
    raw = str(raw or "").strip()
    real = os.path.realpath(where / raw) if raw and "\0" not in raw else ""
    return Path(real) if real and _inside(real, where) else None


def admin_path(raw: str, label: str = "CSV file", field: str = "path") -> Path:
    """real_path(raw), or Invalid naming `field` when it lies outside the import directory."""
    path = real_path(raw)
    if path is None:
        raise Invalid({field: ("import_dir", refusal(label))})
    return path


def inside_import_dir(label: str = "CSV file") -> Rule:
    """The field rule: a path inside the import directory (see real_path)."""
    return Rule("import_dir", lambda _label, v: None if real_path(v) else refusal(label))


def open_admin_file(raw: str, label: str = "CSV file", **kw) -> IO:
    """Open `raw` for reading (with open()'s keywords) once admin_path allows it; the file
    actually opened is checked again, so a symlink swapped in meanwhile is refused too."""
    path = admin_path(raw, label)
    f = open(path, **kw)  # noqa: SIM115 - the caller closes it
    fd_link = f"/proc/self/fd/{f.fileno()}"
    where = Path(os.path.realpath(import_dir()))
    if os.path.islink(fd_link) and not _inside(os.readlink(fd_link), where):
        f.close()
        raise Invalid({"path": ("import_dir", refusal(label))})
    return f
