"""Property-based testing of the whole JSON API (test_api_fuzz_valid.py and
test_api_fuzz_invalid.py): every operation in /api/v1/openapi.json runs with input generated
from its schema, authenticated, and must answer no 5xx and only the statuses and bodies its
document declares.

Valid and invalid input are two test files, so the two xdist workers run them side by side.
"""

import ipaddress
import socket
import time

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import func, select

from tests.conftest import PASSWORD, build

# Generated hostnames and addresses must never leave this machine: the operations that reach
# outside servers (Test connection, Select Enterprise, Sync Now, flow-through delivery, XMPP
# ping) still run, and find nothing listening, like a real appliance whose peer is down.
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _local(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if not isinstance(host, str):
        return True  # AF_UNIX and the like
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


def _connect(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _local(address):
        raise ConnectionRefusedError(111, "Connection refused (test: outside address)")
    return _real_connect(sock, address)


def _connect_ex(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _local(address):
        return 111
    return _real_connect_ex(sock, address)


def _getaddrinfo(host, *args, **kw):
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and not _local(name):
        try:
            ipaddress.ip_address(str(name).split("%")[0])
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
    return _real_getaddrinfo(host, *args, **kw)


# Generated calls per operation and mode, besides the examples the document gives. 25 made
# 3,764 calls in 48 s; 6 make about 910 (78 operations) in 15 s, still every operation in
# both modes with both checks on every answer.
EXAMPLES = 6
CHECKS = [status_code_conformance, response_schema_conformance]

SEED = [
    ("POST", "/api/v1/enterprises", {"name": "Acme", "eid": "acme"}),
    ("POST", "/api/v1/enterprises/1/trusted-servers", {"address": "127.0.0.9"}),
    ("POST", "/api/v1/network-elements/elements",
     {"name": "MiVB-1", "platform": "MiVoice Business", "address": "127.0.0.9"}),
    ("POST", "/api/v1/network-elements/elements",
     {"name": "MV5000-1", "platform": "MiVoice 5000", "address": "127.0.0.9"}),
    ("POST", "/api/v1/network-elements/locations", {"name": "Ottawa"}),
    ("POST", "/api/v1/network-elements/departments", {"name": "Sales"}),
    ("PUT", "/api/v1/network-elements/licences",
     {"items": [{"type": "MiCollab Client", "available": 3}]}),
    ("POST", "/api/v1/network-elements/templates",
     {"name": "Sales staff", "kind": "template", "department": "Sales", "location": "Ottawa",
      "services": ["MiCollab Client"]}),
    ("POST", "/api/v1/network-elements/templates",
     {"name": "Agent", "kind": "role", "services": ["MiCollab Client"]}),
    ("POST", "/api/v1/network-elements/users",
     {"login": "ann", "first_name": "Ann", "last_name": "Lee", "element": "MiVB-1"}),
    ("POST", "/api/v1/peering/enterprises/1/peers",
     {"kind": "mcs", "description": "Peer one", "hostname": "127.0.0.9", "port": 443,
      "peer_eid": "bravo", "key": "apk_x", "dialing_prefix": "", "days": 1, "hour": 2,
      "minute": 30, "ampm": "AM"}),
    ("POST", "/api/v1/sync/enterprises/1/ldap",
     {"name": "Head office", "servers": "127.0.0.9", "security": "none",
      "base_dn": "dc=example,dc=com", "filter": "(objectClass=inetOrgPerson)", "scope": "sub",
      "page_size": 50, "preset": "OpenLDAP", "max_drop": 20, "days": 1, "hour": 1,
      "minute": 0, "ampm": "AM"}),
    ("POST", "/api/v1/federation/servers", {"domain": "ocs.example.com"}),
]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    """An app with an administrator, a token and one of most things; its token."""
    from appliance.auth import create_admin, new_token

    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", _connect)
    mp.setattr(socket.socket, "connect_ex", _connect_ex)
    mp.setattr(socket, "getaddrinfo", _getaddrinfo)
    app = build(tmp_path_factory.mktemp("fuzz"), PEER_TIMEOUT=1, XMPP_TEST_TIMEOUT=1,
                XMPP_PROSODY="/nonexistent/prosody", XMPP_PROSODYCTL="/nonexistent/prosodyctl",
                SCHEDULER_INTERVAL=3600)
    with app.app_context():
        token = new_token(create_admin("admin", PASSWORD), "fuzz")
    auth = {"id": 1, "headers": {"Authorization": f"Bearer {token}"}}
    client = app.test_client()
    for method, url, body in SEED:
        resp = client.open(url, method=method, json=body, headers=auth["headers"])
        assert resp.status_code in (200, 201), (url, resp.get_json())
    # The management platform's operations take the MiVoice 5000 element's own token.
    resp = client.post("/api/v1/network-elements/elements/2/token", headers=auth["headers"])
    auth["platform"] = {"Authorization": f"Bearer {resp.get_json()['token']}"}
    yield app, auth
    app.extensions["appliance"].jobs.shutdown()
    mp.undo()


def _no_server_error(case, response) -> None:
    """No 5xx, but for a 502 the operation declares: the outside server it was told to reach
    (an LDAP directory, a peer) is not there, which here is always so."""
    declared = case.operation.definition.raw.get("responses", {})
    if response.status_code >= 500 and not (response.status_code == 502 and "502" in declared):
        raise AssertionError(f"{case.operation.label} answered {response.status_code}: "
                             f"{response.text[:500]}\n{case.as_curl_command()}")


def _fresh(app, auth: dict) -> dict:
    """The fuzzer may revoke its own token (DELETE /tokens/{id}): issue another then (looked
    up after each call of that operation, not before every call)."""
    from appliance.auth import new_token
    from appliance.db import db
    from appliance.models import ApiToken, User

    if not auth.pop("revoked", False):
        return auth["headers"]
    with app.app_context():
        if db.session.scalar(select(ApiToken.id).where(ApiToken.id == auth["id"])) is None:
            user = db.session.scalar(select(User).where(User.username == "admin"))
            token = new_token(user, "fuzz")
            auth["id"] = db.session.scalar(select(func.max(ApiToken.id)))
            auth["headers"] = {"Authorization": f"Bearer {token}"}
    return auth["headers"]


def every_operation(fuzzed, mode: GenerationMode) -> None:
    """Run every operation with `mode` input; fail listing each operation that failed.

    No operation is left out: none can harm this machine (the XMPP service is "not
    installed", outside addresses are refused above, files are only read from the app's own
    import directory), and deleting the seed data only makes later calls answer 404.
    """
    app, auth = fuzzed
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, headers=auth["headers"])
    failures, counts, started = [], {}, time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()

        @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None,
                             phases=[Phase.explicit, Phase.generate],
                             suppress_health_check=list(HealthCheck))
        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        def run(case):
            counts[case.operation.label] = counts.get(case.operation.label, 0) + 1
            headers = auth["platform"] if "/platform/" in case.operation.path \
                else _fresh(app, auth)
            response = case.call(headers=headers)
            if case.method.upper() == "DELETE" and "/tokens/" in case.operation.path:
                auth["revoked"] = True
            _no_server_error(case, response)
            case.validate_response(response, checks=CHECKS, headers=headers)
        try:
            run()
        except BaseException as exc:  # noqa: B036 - every failure is collected, then reported
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures.append(f"{operation.label} ({mode.value}): {type(exc).__name__}: {exc}")
    print(f"{mode.value}: {len(counts)} operations, {sum(counts.values())} calls, "
          f"{time.monotonic() - started:.0f} s")
    assert len(counts) == len(schema), "every operation is exercised"
    assert not failures, "\n\n".join(failures)
