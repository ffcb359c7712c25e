"""The Enterprise ID rule (seed 000) and the shared field machinery."""

import pytest

from appliance.validation import ENTERPRISE_ID_RULES, Field, Invalid, Schema, host_or_ip

EID = Field("eid", "Enterprise ID", ENTERPRISE_ID_RULES)


@pytest.mark.parametrize("value", ["abcd", "a" * 32, "Acme-01", "1234", "----", "A-b-C-d"])
def test_enterprise_id_accepts(value):
    assert EID.clean(value) == value


@pytest.mark.parametrize("value,rule,message", [
    ("abc", "length", "Enterprise ID must be 4 to 32 characters"),
    ("a" * 33, "length", "Enterprise ID must be 4 to 32 characters"),
    ("ab cd", "forbidden_characters", "Enterprise ID cannot contain spaces, vertical bars, "
     "commas, semicolons, or colons ( | , ; : )"),
    ("ab|cd", "forbidden_characters", None),
    ("ab,cd", "forbidden_characters", None),
    ("ab;cd", "forbidden_characters", None),
    ("ab:cd", "forbidden_characters", None),
    ("ab_cd", "alphanumeric_and_dashes",
     "Enterprise ID must contain only letters, digits and dashes"),
    ("abçd", "alphanumeric_and_dashes", None),
    ("ab.cd", "alphanumeric_and_dashes", None),
    ("", "required", "Enterprise ID is required"),
])
def test_enterprise_id_rejects_naming_the_rule(value, rule, message):
    with pytest.raises(Invalid) as exc:
        EID.clean(value)
    got_rule, got_message = exc.value.errors["eid"]
    assert got_rule == rule
    if message:
        assert got_message == message


def test_surrounding_spaces_are_trimmed_before_the_length_rule():
    assert EID.clean("  abcd  ") == "abcd"
    with pytest.raises(Invalid):
        EID.clean("  abc ")


def test_schema_reports_every_bad_field_at_once():
    schema = Schema("S", EID, Field("host", "Host", (host_or_ip(),)))
    with pytest.raises(Invalid) as exc:
        schema.validate({"eid": "x", "host": "bad host"})
    assert set(exc.value.errors) == {"eid", "host"}
    assert exc.value.as_json()["fields"][0]["rule"] == "length"


@pytest.mark.parametrize("value,ok", [
    ("10.0.0.1", True), ("::1", True), ("peer.example.com", True), ("peer", True),
    ("peer-1.example.com.", True), ("bad host", False), ("-peer.com", False),
    ("300.1.1.1", False), ("a" * 64 + ".com", False), ("", False),
])
def test_host_or_ip(value, ok):
    field = Field("address", "IP address/hostname", (host_or_ip(),))
    if ok:
        assert field.clean(value) == value
    else:
        with pytest.raises(Invalid):
            field.clean(value)


def test_json_schema_carries_the_rule():
    schema = Field("eid", "Enterprise ID", ENTERPRISE_ID_RULES).json_schema()
    assert schema["minLength"] == 4 and schema["maxLength"] == 32
    assert schema["pattern"] == "^[A-Za-z0-9-]*$"


def test_a_nul_character_is_refused_in_any_text_field_and_query_argument(api, admin):
    """PostgreSQL cannot store or compare text holding U+0000 (psycopg refuses it: a 500
    there); on both stores it is a 422 naming the field or argument."""
    resp = api("POST", "/api/v1/enterprises", json={"name": "Ac\x00me", "eid": "acme"})
    assert resp.status_code == 422
    assert resp.get_json()["fields"] == [{"field": "name", "rule": "no_nul", "message":
                                          "Name cannot contain the NUL character (U+0000)"}]
    for url in ("/api/v1/audit?action=a%00b", "/api/v1/enterprises?q=%00"):
        resp = api("GET", url)
        assert resp.status_code == 422 and resp.get_json()["fields"][0]["rule"] == "no_nul"
    assert admin.get("/audit?user=%00").status_code == 422
    assert api("PUT", "/api/v1/network-elements/platform/users/a%00b").status_code == 404
