"""Request bodies are limited before they are read, against the real server (waitress)."""

import json
import socket
import time

import pytest

from tests.security.live import Live

FORM_MB, UPLOAD_MB = 1, 8


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = Live(tmp_path_factory.mktemp("limits"), {"APPLIANCE_MAX_BODY_MB": str(FORM_MB),
                                                      "APPLIANCE_MAX_UPLOAD_MB": str(UPLOAD_MB)})
    yield server
    server.stop()


def _send(live, head: bytes, body: bytes) -> bytes:
    """Send a request on a raw socket and return the start of the answer, even when the
    server refuses the body before it was all sent (and http.client would fail)."""
    with socket.create_connection((live.host, live.port), timeout=10) as s:
        s.sendall(head)
        try:
            s.sendall(body)
        except OSError:
            pass  # the server may close before taking it all: that is the point
        return s.recv(4096)


def test_a_huge_body_is_refused_before_it_is_read(live):
    before = live.rss_kib()
    started = time.monotonic()
    answer = _send(live, b"POST /login HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/x-www-form-urlencoded\r\n"
                   b"Content-Length: 314572800\r\n\r\n", b"username=" + b"a" * (4 << 20))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"max_body" in answer
    assert time.monotonic() - started < 5
    assert live.rss_kib() - before < 20 * 1024  # nothing near the body's size was kept


def test_a_form_over_the_form_limit_gets_413_with_the_rule(live):
    body = b"username=admin&password=" + b"x" * (2 * 1024 * 1024)
    status, _, page = live.request("POST", "/login", body, token=False, headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 413
    assert b"larger than 1 MiB" in page and b"APPLIANCE_MAX_BODY_MB" in page


def test_an_api_body_over_the_form_limit_gets_a_json_413(live):
    big = {"eid": "acme-1", "name": "x" * (2 * 1024 * 1024)}
    status, headers, raw = live.request("POST", "/api/v1/enterprises", big)
    assert status == 413
    assert headers["Content-Type"].startswith("application/json")
    answer = json.loads(raw)
    assert answer["error"] == "request_entity_too_large"
    assert "APPLIANCE_MAX_BODY_MB" in answer["message"]
    status, _, raw = live.request("GET", "/api/v1/enterprises")
    assert status == 200 and json.loads(raw)["items"] == []  # nothing was stored


def _multipart(name: str, content: bytes) -> tuple[bytes, str]:
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{name}\"\r\nContent-Type: text/csv\r\n\r\n").encode() + content + \
        f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_an_upload_may_be_larger_than_a_form_up_to_its_own_limit(live):
    rows = b"".join(b"user%07d,First,Last\r\n" % i for i in range(120_000))  # about 3 MiB
    assert FORM_MB * 1024 * 1024 < len(rows) < UPLOAD_MB * 1024 * 1024
    body, ctype = _multipart("users.csv", rows)
    status, _, raw = live.request("POST", "/api/v1/network-elements/bulk", body,
                                  headers={"Content-Type": ctype})
    assert status == 202, raw[:300]
    assert "run_id" in json.loads(raw)

    body, ctype = _multipart("users.csv", b"x" * (UPLOAD_MB * 1024 * 1024 + 1))
    answer = _send(live, (f"POST /api/v1/network-elements/bulk HTTP/1.1\r\nHost: x\r\n"
                          f"Authorization: Bearer {live.token}\r\nContent-Type: {ctype}\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n").encode(), body)
    assert answer.startswith(b"HTTP/1.1 413") and b"max_body" in answer
