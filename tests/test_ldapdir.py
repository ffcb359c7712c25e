"""appliance.ldapdir against a real slapd: TLS, failover, errors, paging, AD-like entries."""

import logging
import uuid

import pytest
import trustme

from appliance import ldapdir  # not `from ... import test_connection`: pytest would collect it
from appliance.ldapdir import MAPPING_PRESETS, Entry, LdapError, LdapSettings, map_entry
from tests.ldap_server import Slapd, ad_user, free_port, run_slapd

OPENLDAP = MAPPING_PRESETS["OpenLDAP"]
AD = MAPPING_PRESETS["Active Directory"]
PEOPLE = 1200


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    """The shared server: 1200 people, 3 AD-like users, no size limit for the reader."""
    yield from run_slapd(tmp_path_factory.mktemp("slapd"), people=PEOPLE, ad_users=3)


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """A server that returns at most 10 entries per search to the reader; 30 people."""
    yield from run_slapd(tmp_path_factory.mktemp("limited"), sizelimit=10, people=30)


@pytest.fixture
def other_ca_file(tmp_path):
    path = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


def error(settings: LdapSettings, mapping=OPENLDAP) -> LdapError:
    """The LdapError that reading the whole directory with `settings` raises."""
    with pytest.raises(LdapError) as info:
        for _entry in ldapdir.entries(settings, list(mapping.values())):
            pass
    return info.value


# -- reading --------------------------------------------------------------------------------

@pytest.mark.parametrize("security", ["none", "starttls", "ldaps"])
def test_each_security_mode_returns_mapped_entries(directory, security):
    found = ldapdir.test_connection(directory.settings(security), OPENLDAP, limit=5)
    assert len(found) == 5
    first = next(e for e in found if e["login"] == "user0")
    assert first == {
        "dn": "uid=user0,ou=people,dc=example,dc=test", "login": "user0",
        "first_name": "First0", "last_name": "Last0", "email": "user0@example.test",
        "phone": "+1 555 000000", "mobile": "+1 666 000000", "department": "D0",
        "title": "Engineer", "external_id": first["external_id"]}
    assert uuid.UUID(first["external_id"])  # entryUUID, an operational attribute


def test_ldaps_checks_an_ip_address_against_the_certificate(directory):
    settings = directory.settings("ldaps", servers=["127.0.0.1"])
    assert len(ldapdir.test_connection(settings, OPENLDAP, limit=1)) == 1


def test_paging_streams_every_entry_exactly_once(directory):
    settings = directory.settings(page_size=100)
    dns = [entry.dn for entry in ldapdir.entries(settings, ["uid"])]
    assert len(dns) == PEOPLE
    assert len(set(dns)) == PEOPLE
    assert set(dns) == {f"uid=user{i},{directory.people_dn}" for i in range(PEOPLE)}


def test_entries_is_lazy(directory):
    stream = ldapdir.entries(directory.settings(page_size=7), ["uid"])
    assert not isinstance(stream, list)
    first = next(stream)
    assert first.attrs == {"uid": [first.dn.split(",")[0][4:]]}
    stream.close()  # unbinds without reading the remaining pages


@pytest.mark.parametrize(("scope", "base", "count"), [
    ("one", "ou=people,dc=example,dc=test", PEOPLE),
    ("base", "uid=user7,ou=people,dc=example,dc=test", 1),
    ("sub", "dc=example,dc=test", PEOPLE),
])
def test_scopes(directory, scope, base, count):
    settings = directory.settings(scope=scope, base_dn=base, page_size=500,
                                  filter="(title=Engineer)")
    assert sum(1 for _ in ldapdir.entries(settings, [])) == count


def test_operational_attributes_only_when_requested(directory):
    settings = directory.settings(filter="(uid=user3)")
    plain = ldapdir.test_connection(settings, {"login": "uid"})
    assert plain == [{"dn": "uid=user3,ou=people,dc=example,dc=test", "login": "user3"}]
    [entry] = ldapdir.entries(settings, ["uid", "entryUUID"])
    assert set(entry.attrs) == {"uid", "entryUUID"}
    assert str(uuid.UUID(entry.attrs["entryUUID"][0])) == entry.attrs["entryUUID"][0]


def test_test_connection_returns_at_most_limit(directory):
    assert len(ldapdir.test_connection(directory.settings(), OPENLDAP, limit=3)) == 3
    assert ldapdir.test_connection(directory.settings(filter="(uid=nobody)"), OPENLDAP) == []


def test_failover_skips_an_unreachable_server(directory, caplog):
    dead = f"127.0.0.1:{free_port()}"
    settings = directory.settings("starttls", servers=[dead, "localhost"])
    with caplog.at_level(logging.WARNING, logger="appliance.ldapdir"):
        assert len(ldapdir.test_connection(settings, OPENLDAP, limit=2)) == 2
    assert dead in caplog.text and "refused" in caplog.text


def test_referral_objects_in_a_subtree_are_skipped_but_a_referral_base_is_not(directory):
    ref_dn = "ou=elsewhere,dc=example,dc=test"
    directory.add(ref_dn, {"objectClass": ["referral", "extensibleObject"], "ou": "elsewhere",
                           "ref": "ldap://ldap.elsewhere.test/ou=elsewhere,dc=example,dc=test"})
    try:
        settings = directory.settings(base_dn=directory.suffix, filter="(title=Engineer)")
        assert sum(1 for _ in ldapdir.entries(settings, [])) == PEOPLE
        err = error(directory.settings(base_dn=f"ou=x,{ref_dn}"))
        assert err.kind == "truncated"
        assert "result code 10 (referral)" in err.message
        assert "ldap://ldap.elsewhere.test" in err.message
    finally:
        directory.delete(ref_dn)


# -- AD-like and OpenLDAP identifiers ----------------------------------------------------

def test_ad_object_guid_maps_to_a_guid_that_survives_a_rename(directory):
    dn, guid = next(iter(directory.add_ad_users(1, start=100).items()))
    settings = directory.settings(base_dn=directory.users_dn, filter="(objectClass=user)")

    def by_login():
        return {e["login"]: e for e in ldapdir.test_connection(settings, AD, limit=100)}

    before = by_login()["aduser100"]
    assert before["dn"] == dn
    assert before["external_id"] == str(uuid.UUID(bytes_le=guid))
    assert before["department"] == "Sales"
    new_dn = directory.rename(dn, "cn=Renamed User100")
    after = by_login()["aduser100"]
    assert after["dn"] == new_dn == f"cn=Renamed User100,{directory.users_dn}"
    assert after["external_id"] == before["external_id"]
    directory.modify(new_dn, {"department": "Support", "mobile": "+1 999", "title": None})
    changed = by_login()["aduser100"]
    assert (changed["department"], changed["mobile"], changed["title"]) == ("Support",
                                                                             "+1 999", "")
    assert changed["external_id"] == before["external_id"]


def test_object_guid_stays_bytes_even_when_it_looks_like_text(directory):
    guid = b"ABCDEFGHIJKLMNOP"
    dn, attrs = ad_user(200, guid=guid)
    directory.add(dn, attrs)
    settings = directory.settings(base_dn=dn, scope="base", filter="(objectClass=user)")
    [entry] = ldapdir.entries(settings, ["objectGUID", "sAMAccountName"])
    assert entry.attrs["objectGUID"] == [guid]
    assert entry.attrs["sAMAccountName"] == ["aduser200"]
    upn = MAPPING_PRESETS["Active Directory (UPN login)"]
    [mapped] = ldapdir.test_connection(settings, upn)
    assert mapped["login"] == "aduser200@example.test"
    assert mapped["external_id"] == str(uuid.UUID(bytes_le=guid))


def test_entry_uuid_survives_a_rename(directory):
    dn = directory.add_people(1, start=5000)[0]
    settings = directory.settings(filter="(uid=user5000)")
    [before] = ldapdir.test_connection(settings, OPENLDAP)
    moved = directory.rename(dn, "uid=user5000", new_superior=directory.users_dn)
    try:
        [after] = ldapdir.test_connection(directory.settings(base_dn=directory.users_dn,
                                                             filter="(uid=user5000)"), OPENLDAP)
        assert after["dn"] == moved == f"uid=user5000,{directory.users_dn}"
        assert after["external_id"] == before["external_id"] != ""
    finally:
        directory.delete(moved)


def test_aliases_are_found_under_the_name_the_server_uses(directory):
    settings = directory.settings(filter="(uid=user1)")
    mapping = {"last_name": "surname", "mobile": "mobileTelephoneNumber", "login": "UID",
               "first_name": "gn"}
    [entry] = ldapdir.entries(settings, list(mapping.values()))
    assert entry.attrs == {"sn": ["Last1"], "mobile": ["+1 666 000001"], "UID": ["user1"],
                           "givenName": ["First1"]}
    assert map_entry(entry, mapping) == {
        "dn": "uid=user1,ou=people,dc=example,dc=test", "last_name": "Last1",
        "mobile": "+1 666 000001", "login": "user1", "first_name": "First1"}


def test_map_entry():
    entry = Entry("cn=x,dc=t", {"GivenName": ["Ann", "Anna"], "objectGUID": [bytes(range(16))],
                                "photo": [b"\x00\xff"]})
    mapping = {"first_name": "givenname", "external_id": "objectGUID", "blob": "photo",
               "email": "mail", "unset": ""}
    assert map_entry(entry, mapping) == {
        "dn": "cn=x,dc=t", "first_name": "Ann",
        "external_id": "03020100-0504-0706-0809-0a0b0c0d0e0f", "blob": "00ff", "email": "",
        "unset": ""}


def test_presets_cover_every_field():
    for preset in MAPPING_PRESETS.values():
        assert set(preset) == set(ldapdir.FIELDS)
    assert MAPPING_PRESETS["Active Directory"]["external_id"] == "objectGUID"
    assert MAPPING_PRESETS["OpenLDAP"]["login"] == "uid"


# -- errors -------------------------------------------------------------------------------

def test_wrong_password(directory):
    err = error(directory.settings("starttls", password="not-the-password"))
    assert err.kind == "credentials"
    assert "wrong bind DN or password" in err.message


def test_unknown_bind_dn(directory):
    err = error(directory.settings(bind_dn="cn=nobody,dc=example,dc=test"))
    assert err.kind == "credentials"


@pytest.mark.parametrize(("bind_dn", "password"), [("cn=reader,dc=x", ""), ("", "secret")])
def test_half_credentials_are_refused_before_connecting(bind_dn, password):
    settings = LdapSettings(servers=[f"127.0.0.1:{free_port()}"], bind_dn=bind_dn,
                            password=password)
    assert error(settings).kind == "credentials"


@pytest.mark.parametrize("security", ["starttls", "ldaps"])
def test_certificate_from_another_ca(directory, other_ca_file, security):
    err = error(directory.settings(security, ca_file=other_ca_file))
    assert err.kind == "tls"
    assert "not trusted" in err.message and other_ca_file in err.message


def test_system_cas_do_not_trust_a_private_ca(directory):
    err = error(directory.settings("ldaps", ca_file=""))
    assert err.kind == "tls"
    assert "system's trusted CAs" in err.message


def test_missing_ca_file(directory, tmp_path):
    err = error(directory.settings("ldaps", ca_file=str(tmp_path / "nope.pem")))
    assert (err.kind, err.message) == ("tls", f"The CA file {tmp_path / 'nope.pem'} does not "
                                              "exist.")


@pytest.mark.parametrize("security", ["starttls", "ldaps"])
def test_hostname_mismatch(tmp_path, security):
    with Slapd(tmp_path, hostnames=["ldap.example.test"]) as server:
        for name in ("localhost", "127.0.0.1"):
            err = error(server.settings(security, servers=[name]))
            assert err.kind == "tls"
            assert "hostname mismatch" in err.message
            assert f"not valid for the name '{name}'" in err.message


def test_ldaps_against_a_plain_port(directory):
    err = error(directory.settings("ldaps", port=directory.ldap_port))
    assert err.kind == "tls"
    assert "TLS handshake failed" in err.message


def test_unreachable_server():
    port = free_port()
    err = error(LdapSettings(servers=["127.0.0.1", "localhost"], port=port))
    assert err.kind == "connect"
    assert err.message == (f"Could not use any of the 2 LDAP servers: 127.0.0.1:{port}: "
                           f"connection refused (nothing listens on port {port}); "
                           f"localhost:{port}: connection refused (nothing listens on port "
                           f"{port}).")


def test_unresolvable_name():
    err = error(LdapSettings(servers=["no-such-host.invalid"]))
    assert err.kind == "connect"
    assert "'no-such-host.invalid' cannot be resolved" in err.message


def test_no_server_configured():
    assert error(LdapSettings(servers=["", " "])).kind == "connect"


def test_missing_base_dn(directory):
    err = error(directory.settings(base_dn="ou=nope,dc=example,dc=test"))
    assert err.kind == "base_dn"
    assert "'ou=nope,dc=example,dc=test' does not exist" in err.message
    assert "nearest existing entry is 'dc=example,dc=test'" in err.message


def test_malformed_base_dn(directory):
    err = error(directory.settings(base_dn="not a dn"))
    assert err.kind == "base_dn"
    assert "invalidDNSyntax" in err.message


@pytest.mark.parametrize(("search_filter", "problem"), [
    ("(cn=a", "unbalanced"), ("cn=a", "enclosed in parentheses"), ("(cn)", "invalid"),
    ("(cn=a)(sn=b)", "missing boolean operator"), ("(!(a=1)(b=2))", "NOT"), ("", "empty"),
])
def test_bad_filter_is_caught_before_connecting(search_filter, problem):
    settings = LdapSettings(servers=[f"127.0.0.1:{free_port()}"], filter=search_filter)
    err = error(settings)
    assert err.kind == "filter"
    assert problem in err.message


@pytest.mark.parametrize("page_size", [5, 100])
def test_server_size_limit_is_an_error_never_a_short_result(limited, page_size):
    settings = limited.settings(page_size=page_size)
    received = []
    with pytest.raises(LdapError) as info:
        for entry in ldapdir.entries(settings, ["uid"]):
            received.append(entry)
    assert info.value.kind == "truncated"
    assert "result code 4 (sizeLimitExceeded)" in info.value.message
    assert "after the server sent 10 entries" in info.value.message
    assert len(received) == (10 if page_size == 5 else 0)  # a failed page is never yielded


def test_size_limit_does_not_apply_to_the_rootdn(limited):
    settings = limited.settings(bind_dn=limited.root_dn, password=limited.root_password,
                                page_size=5)
    assert sum(1 for _ in ldapdir.entries(settings, [])) == 30


def test_unanswered_and_lost_connections(tmp_path):
    with Slapd(tmp_path, people=300) as server:
        server.pause()  # the kernel still accepts TCP connections; nothing answers
        try:
            err = error(server.settings(timeout=1))
            assert err.kind == "timeout"
            assert "did not answer within 1 s" in err.message
        finally:
            server.resume()

        stream = ldapdir.entries(server.settings(timeout=1, page_size=50), ["uid"])
        next(stream)
        server.pause()
        try:
            with pytest.raises(LdapError) as info:
                list(stream)
            assert info.value.kind == "timeout"
            assert "during the search (after 50 entries)" in info.value.message
        finally:
            server.resume()

        stream = ldapdir.entries(server.settings(page_size=50), ["uid"])
        next(stream)
        server.stop()
        with pytest.raises(LdapError) as info:
            list(stream)
        assert info.value.kind == "connect"
        assert "was lost during the search after 50 entries" in info.value.message


# -- the password stays secret ------------------------------------------------------------

def test_password_never_shown(directory, limited, other_ca_file, caplog):
    secret = "S3cret-Pa55word!"
    settings = directory.settings(password=secret)
    assert secret not in repr(settings) and secret not in str(settings)
    failing = [
        directory.settings(bind_dn=directory.reader_dn + "x", password=secret),
        directory.settings("ldaps", password=secret, ca_file=other_ca_file),
        directory.settings(password=secret,
                           servers=[f"127.0.0.1:{free_port()}", f"localhost:{free_port()}"]),
        directory.settings(bind_dn=directory.reader_dn, password=secret),
        limited.settings(password=limited.reader_password, page_size=5),
        directory.settings(password=secret, filter=f"(cn={secret}"),
        directory.settings(password=secret, base_dn=f"ou={secret},dc=example,dc=test",
                           bind_dn=directory.root_dn),
    ]
    failing[-1].password = directory.root_password
    failing[-1].base_dn = f"ou={directory.root_password},dc=example,dc=test"
    failing[4].filter = f"(|(cn={limited.reader_password})(objectClass=*))"
    kinds = set()
    with caplog.at_level(logging.DEBUG):
        for case in failing:
            err = error(case)
            kinds.add(err.kind)
            for text in (str(err), repr(err), err.message, *map(str, err.args)):
                assert case.password not in text
    assert kinds == {"credentials", "tls", "connect", "truncated", "filter", "base_dn"}
    for password in (secret, directory.root_password, limited.reader_password):
        assert password not in caplog.text


# -- the python-ldap reader ------------------------------------------------------------------

@pytest.mark.parametrize("security", ["none", "starttls", "ldaps"])
def test_python_ldap_reads_what_ldap3_reads(directory, security):
    """Same entries, names and values (str, or bytes when binary), with every security mode
    (python-ldap connects where ldap3 did, or ldap3 reads when python-ldap cannot)."""
    for settings, mapping in ((directory.settings(security, page_size=100), OPENLDAP),
                              (directory.settings(security, base_dn=directory.users_dn,
                                                  filter="(objectClass=user)"), AD)):
        attributes = [*mapping.values(), "surname"]
        one = {e.dn: e.attrs for e in ldapdir.entries(settings, attributes, reader="ldap3")}
        two = {e.dn: e.attrs for e in ldapdir.entries(settings, attributes,
                                                       reader="python-ldap")}
        assert one == two and len(one) >= 3
    assert len(one) < PEOPLE and any(isinstance(v[0], bytes) for v in
                                     (a["objectGUID"] for a in two.values()))


def test_python_ldap_size_limit_is_an_error_never_a_short_result(limited):
    received = []
    with pytest.raises(LdapError) as info:
        for entry in ldapdir.entries(limited.settings(page_size=5), ["uid"],
                                     reader="python-ldap"):
            received.append(entry)
    assert info.value.kind == "truncated" and len(received) == 10
    assert "result code 4 (sizeLimitExceeded)" in info.value.message


@pytest.mark.parametrize("reader", ["ldap3", "python-ldap"])
def test_identifiers_list_what_map_entry_gives(directory, reader):
    for settings, attribute in ((directory.settings(), "entryUUID"),
                                (directory.settings(base_dn=directory.users_dn,
                                                    filter="(objectClass=user)"), "objectGUID")):
        mapped = {e.dn: map_entry(e, {"k": attribute})["k"]
                  for e in ldapdir.entries(settings, [attribute])}
        listed = dict(pair for page in ldapdir.identifiers(settings, attribute, reader)
                      for pair in page)
        assert listed == mapped and all(listed.values())


def test_python_ldap_unanswered_and_lost_searches(tmp_path):
    with Slapd(tmp_path, people=300) as server:
        stream = ldapdir.entries(server.settings(timeout=1, page_size=50), ["uid"],
                                 reader="python-ldap")
        next(stream)
        server.pause()
        try:
            with pytest.raises(LdapError) as info:
                list(stream)
            assert info.value.kind == "timeout" and "did not answer within 1 s" in str(info.value)
        finally:
            server.resume()
        stream = ldapdir.entries(server.settings(page_size=50), ["uid"], reader="python-ldap")
        next(stream)
        server.stop()
        with pytest.raises(LdapError) as info:
            list(stream)
        assert info.value.kind == "connect" and "was lost during the search" in str(info.value)
