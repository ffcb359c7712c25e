"""Every job ends, succeeded, failed or interrupted, with a reason, whatever its input
(hardening item 11): a CSV header with a byte that is not UTF-8 used to leave its bulk
preview "running" forever."""

import io
import json

import pytest
from sqlalchemy import select

from appliance import jobs as jobs_module
from appliance.db import db
from appliance.jobs import JobFailed, JobKind, Jobs
from appliance.models import AuditEntry, JobRun
from appliance.plugins.network_elements.models import MIVB, Element, User
from appliance.plugins.sync import pbx_csv

HEADER = b"login,last_name,ele\xffment,first_name\n"
ROWS = b"bob,Brown,MiVB-1,Bob\n"


def upload(api, data: bytes, apply: bool) -> int:
    resp = api("POST", "/api/v1/network-elements/bulk" + ("?apply=1" if apply else ""),
               data={"file": (io.BytesIO(data), "users.csv")},
               content_type="multipart/form-data")
    assert resp.status_code == 202, resp.get_json()
    return resp.get_json()["run_id"]


@pytest.mark.parametrize("apply", [False, True])
def test_bulk_csv_with_an_invalid_header_byte_ends_failed_with_row_and_column(
        app, api, apply):
    with app.app_context():
        db.session.add(Element(name="MiVB-1", platform=MIVB, address="mivb1.example.com"))
        db.session.commit()
    run_id = upload(api, HEADER + ROWS, apply)
    with app.app_context():
        run = app.extensions["appliance"].jobs.wait(run_id, timeout=15)
        assert run.state == "failed", (run.state, run.message)
        assert run.message == ("Line 1 (the header), column 3: invalid UTF-8 byte; save the "
                               "file as UTF-8 text")
        assert db.session.scalar(select(User.id)) is None
        entries = [json.loads(e.summary)["after"] for e in db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "import"))]
        assert entries == ([{"file": "users.csv", "format": "csv", "add": 0, "update": 0,
                             "unchanged": 0, "rejected": 0, "queued": 0,
                             "error": run.message}] if apply else [])
    result = api("GET", f"/api/v1/network-elements/bulk/{run_id}").get_json()
    assert result["error"] == run.message


def test_pbx_export_with_an_invalid_header_byte_names_row_and_column():
    data = b"number,device_type,mac\xff,first_name,last_name,department\n2001,5340,,A,B,C\n"
    with pytest.raises(pbx_csv.CsvFormatError) as exc:
        list(pbx_csv.read_devices(io.BytesIO(data)))
    assert str(exc.value) == ("line 1 (the header), column 3: invalid UTF-8 byte; the export "
                              "must be UTF-8 text")


def unstorable(ctx):
    raise JobFailed("Line 1: bad byte \udcff and a NUL \x00 here")


def crashing(ctx):
    raise RuntimeError("went wrong on \udcfe")


def exiting(ctx):
    raise SystemExit(3)


def noisy(ctx):
    ctx.progress(50, "half of \udcff")


KINDS = [JobKind("unstorable", "Unstorable message", unstorable),
         JobKind("crashing", "Crashing", crashing), JobKind("exiting", "Exiting", exiting),
         JobKind("noisy", "Noisy", noisy)]


@pytest.fixture
def jobs(app):
    j = Jobs(app, KINDS)
    yield j
    j.shutdown()


def test_every_run_ends_with_a_reason(app, jobs):
    with app.app_context():
        ended = {}
        for kind in ("unstorable", "crashing", "exiting", "noisy"):
            run, _ = jobs.submit(kind, f"t:{kind}")
            done = jobs.wait(run.id, timeout=10)
            ended[kind] = (done.state, done.message)
    assert ended == {
        "unstorable": ("failed", "Line 1: bad byte \\udcff and a NUL \\x00 here"),
        "crashing": ("failed", "Unexpected error: RuntimeError: went wrong on \\udcfe"),
        "exiting": ("failed", "Unexpected error: SystemExit: 3"),
        "noisy": ("succeeded", "half of \\udcff"),
    }


def test_a_run_whose_end_cannot_be_recorded_still_ends(app, jobs, monkeypatch):
    # As if the message could not be stored however it is written.
    monkeypatch.setattr(jobs_module, "storable", lambda text, limit=2000: text)
    with app.app_context():
        run, _ = jobs.submit("unstorable", "t:x")
        done = jobs.wait(run.id, timeout=10)
        assert (done.state, done.message) == (
            "failed", "The job ended failed but its message could not be stored (see the log)")
        assert db.session.scalar(select(JobRun.finished_at).where(JobRun.id == run.id))
