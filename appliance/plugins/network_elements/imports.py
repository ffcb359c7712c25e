"""The Bulk User Provisioning tool's files and job: an upload is kept under the data
directory, previewed, then applied, each run writing its result report next to it."""

import json
import secrets
import time
from pathlib import Path

from flask import current_app
from werkzeug.datastructures import FileStorage

from appliance.host import host
from appliance.jobs import JobContext, JobFailed, JobKind
from appliance.validation import Invalid

from . import bulk
from .bulk_read import DEFAULTS, FORMATS
from .flow import every

KIND = "network_elements.bulk"
KEEP_DAYS = 30  # uploads, reports and summaries are removed after this


def folder() -> Path:
    path = Path(current_app.config["DATA_DIR"]) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def store(upload: FileStorage | None) -> tuple[str, str]:
    """Keep an uploaded file (streamed to disk); return (token, format). Invalid naming the
    field `file` when there is none, or not a .csv or .ldif file."""
    if upload is None or not upload.filename:
        raise Invalid({"file": ("required", "Choose the file to import (the multipart field "
                                "file)")})
    name = upload.filename.lower()
    fmt = "ldif" if name.endswith((".ldif", ".ldf")) else "csv" if name.endswith(".csv") \
        else ""
    if not fmt:
        raise Invalid({"file": ("file", "Choose a .csv file (the platform's export) or an "
                                ".ldif file")})
    token = secrets.token_hex(12)
    upload.save(folder() / f"{token}.{fmt}")
    (folder() / f"{token}.name").write_text(upload.filename)
    return token, fmt


def defaults(form) -> dict:
    """The import options a form names (DEFAULTS: what fills the cells a row leaves empty)."""
    return {k: form[k] for k in DEFAULTS if form.get(k)}


def submit(token: str, fmt: str, options: dict, apply: bool, who: str | None):
    """Start the preview (or with `apply`, the import) of a stored upload: its job run."""
    run, _ = host().jobs.submit(
        KIND, f"bulk:{token}", {"token": token, "fmt": fmt, "defaults": options,
                                "apply": apply, "username": who},
        label="Bulk import" if apply else "Bulk import preview", triggered_by=who)
    return run


def upload_path(token: str, fmt: str) -> Path:
    if not token.isalnum() or fmt not in FORMATS:
        raise ValueError("Unknown upload")
    path = folder() / f"{token}.{fmt}"
    if not path.exists():
        raise ValueError("The uploaded file is gone: upload it again")
    return path


def report_path(run_id: int) -> Path:
    return folder() / f"report-{run_id}.csv"


def run(ctx: JobContext) -> None:
    p = ctx.params
    try:
        path = upload_path(p["token"], p["fmt"])
    except ValueError as exc:
        raise JobFailed(str(exc)) from None
    ctx.progress(5, "Previewing" if not p.get("apply") else "Importing")
    name = path.with_suffix(".name")
    summary = bulk.run(path, p["fmt"], p.get("defaults") or {}, apply=bool(p.get("apply")),
                       report_path=report_path(ctx.run_id), username=p.get("username"),
                       filename=name.read_text() if name.exists() else None,
                       checkpoint=lambda s: ctx.count_with_work(**_counts(s)))
    done = folder() / f"summary-{ctx.run_id}.json"
    part = done.with_suffix(".part")
    part.write_text(json.dumps(summary.as_dict()))
    part.replace(done)  # the run's page, polling meanwhile, never reads half a file
    ctx.count(**_counts(summary))
    if summary.error:
        raise JobFailed(summary.error)
    c = summary.counts
    if p.get("apply"):
        msg = (f"{summary.total:,} rows imported: {c['add']} added, {c['update']} updated, "
               f"{c['unchanged']} unchanged (already there), {c['rejected']} rejected")
        if summary.accounts.get("note"):
            msg += f". {summary.accounts['note']}"
    else:
        msg = (f"{summary.total:,} rows previewed: {c['add']} would be added, {c['update']} "
               f"updated, {c['unchanged']} unchanged, {c['rejected']} rejected")
    ctx.progress(100, msg)


def _counts(summary: bulk.Summary) -> dict:
    """The run's counts: each action's, the rows read and the flow-through changes queued."""
    return {**summary.counts, "rows": summary.total, "queued": summary.queued}


def interrupted(counts: dict, params: dict) -> str:
    """The message of a run the appliance stopped: what its committed chunks hold."""
    if not params.get("apply"):
        return "The appliance stopped during the preview; nothing was imported: preview again"
    rows = counts.get("rows", 0)
    if not rows:
        return ("The appliance stopped before the import committed any row: import the file "
                "again")
    return (f"The appliance stopped during the import: its first {rows:,} rows were committed "
            f"({counts.get('add', 0)} added, {counts.get('update', 0)} updated, "
            f"{counts.get('unchanged', 0)} unchanged, {counts.get('rejected', 0)} rejected); "
            "import the same file again to complete it (the rows already there show as "
            "unchanged)")


def summary(run_id: int) -> dict | None:
    path = folder() / f"summary-{run_id}.json"
    return json.loads(path.read_text()) if path.exists() else None


def tidy(ctx: JobContext | None = None) -> int:
    """Remove the uploads, reports and summaries older than KEEP_DAYS; return how many."""
    cutoff, n = time.time() - KEEP_DAYS * 86400, 0
    for path in folder().iterdir():
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            n += 1
    if ctx is not None:
        ctx.count(removed=n)
        ctx.progress(100, f"{n} bulk import file(s) older than {KEEP_DAYS} days removed")
    return n


BULK = JobKind(KIND, "Bulk User Provisioning", run, interrupted=interrupted)
TIDY = JobKind("network_elements.tidy", "Bulk import files clean-up", tidy, next_run=every,
               default_spec={"seconds": 86400})
