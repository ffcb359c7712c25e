"""PBX synchronization rules (the seed's rules 1-6), the CSV connector and its streaming."""

import io
import subprocess
import sys
import tracemalloc
from dataclasses import replace
from pathlib import Path

import pytest

from appliance.plugins.sync.pbx import build_accounts, synchronize
from appliance.plugins.sync.pbx_csv import (
    INVALID_CHARACTER,
    INVALID_ROW,
    CsvConnector,
    CsvFormatError,
    read_devices,
)
from appliance.plugins.sync.pbx_model import (
    DESKPHONE,
    MINET_SOFTPHONE,
    MIVB,
    MIVO250,
    OTHER,
    RULE_1,
    RULE_2,
    RULE_3,
    RULE_4,
    RULE_5,
    SIP_SOFTPHONE,
    UC_ENDPOINT,
    Connector,
    Device,
    Issue,
    PbxAccount,
    kind,
)
from appliance.plugins.sync.pbx_numbers import NumberState, decide_numbers, numbers_to_keep

DATA = Path(__file__).parent / "data" / "pbx"
HEADER_ALL = ("number,device_type,mac,first_name,last_name,department,group,group_kind,pilot,"
              "dynamic_extension\n")
SYNC_DIR = Path(__file__).parents[1] / "appliance" / "plugins" / "sync"


def dev(number, device_type="5340 IP", first="Ann", last="Lee", dept="Sales", **kw):
    """A device record; line defaults to the number's position in a test's list."""
    return Device(number, device_type, first_name=first, last_name=last, department=dept,
                  **kw)


def lines(*devices):
    """The devices with line = 2, 3, ... as a CSV file would number them."""
    return [replace(d, line=i) for i, d in enumerate(devices, start=2)]


def by_key(report):
    return {a.key: a for a in report.accounts}


def skipped(report):
    return {i.number: i.rule for i in report.skipped}


# --- classification (rule 2's recognition) ----------------------------------------------


@pytest.mark.parametrize("mac", [
    "A1:21:00:12:34:56", "a1:21:00:ab:cd:ef", "A1-21-00-12-34-56", "a1-21-00-ab-cd-ef",
    "A12100123456", "a12100abcdef", " A1:21:00:12:34:56 ",
])
def test_5020_ip_with_minet_mac_prefix_is_a_minet_softphone(mac):
    assert kind(Device("3001", "5020 IP", mac=mac)) == MINET_SOFTPHONE


@pytest.mark.parametrize("mac", ["00:08:5D:12:34:56", "", "A1:21:01:00:00:00", "A121.0012.3456",
                                 "B1:21:00:00:00:00"])
def test_5020_ip_with_another_mac_is_a_deskphone(mac):
    assert kind(Device("2001", "5020 IP", mac=mac)) == DESKPHONE


@pytest.mark.parametrize(("device_type", "expected"), [
    ("App Server Port", MINET_SOFTPHONE), ("app  server port", MINET_SOFTPHONE),
    ("MiCollab Client Endpoint", UC_ENDPOINT), ("SIP Softphone", SIP_SOFTPHONE),
    ("MiCollab SIP Softphone", SIP_SOFTPHONE), ("SIP Device", DESKPHONE),
    ("5340 IP", DESKPHONE), ("6920", DESKPHONE), ("Analog", DESKPHONE),
    ("Hunt Group", OTHER), ("", OTHER), ("  ", OTHER),
])
def test_device_kinds(device_type, expected):
    assert kind(Device("1000", device_type, mac="A1:21:00:00:00:01")) == expected


# --- rule 1 ------------------------------------------------------------------------------


def test_rule_1_minet_or_sip_softphone_not_both():
    report = build_accounts(lines(dev("2001"), dev("3002", "SIP Softphone"),
                                  dev("3001", "App Server Port")), MIVB)
    [account] = report.accounts
    assert (account.softphone, account.softphone_kind) == ("3001", "minet")
    assert account.numbers == ["2001", "3001"]
    [issue] = report.skipped
    assert (issue.number, issue.line, issue.rule) == ("3002", 3, RULE_1)
    assert "Minet softphone is preferred" in issue.message and "rule 1" in issue.message

    # A SIP softphone alone is the user's softphone.
    alone = build_accounts(lines(dev("2001"), dev("3002", "SIP Softphone")), MIVB)
    [account] = alone.accounts
    assert (account.softphone, account.softphone_kind, alone.skipped) == ("3002", "sip", [])


def test_rule_1_applies_inside_a_group_too_even_to_the_pilot():
    report = build_accounts(lines(
        dev("6001", "SIP Softphone", group="600", group_kind="PRG", pilot=True),
        dev("6002", "App Server Port", "x", "y", "z", group="600", group_kind="PRG"),
    ), MIVB)
    [account] = report.accounts
    assert (account.first_name, account.softphone, account.softphone_kind) == (
        "Ann", "6002", "minet")
    assert account.pilot is None  # the pilot identifies the account but was not kept
    assert skipped(report) == {"6001": RULE_1}


# --- rule 2 ------------------------------------------------------------------------------


def test_rule_2_uc_endpoint_only_without_minet_softphone():
    only = build_accounts(lines(dev("4001", "MiCollab Client Endpoint")), MIVB)
    assert [(a.uc_endpoint, a.softphone) for a in only.accounts] == [("4001", None)]

    both = build_accounts(lines(dev("4001", "MiCollab Client Endpoint"),
                                dev("3001", "5020 IP", mac="a1-21-00-00-00-01")), MIVB)
    [account] = both.accounts
    assert (account.softphone, account.softphone_kind, account.uc_endpoint) == (
        "3001", "minet", None)
    [issue] = both.skipped
    assert (issue.number, issue.rule) == ("4001", RULE_2)
    assert "not used" in issue.message and "3001" in issue.message

    # A SIP softphone does not displace the UC Endpoint.
    sip = build_accounts(lines(dev("4001", "MiCollab Client Endpoint"),
                               dev("3002", "SIP Softphone")), MIVB)
    [account] = sip.accounts
    assert (account.softphone, account.uc_endpoint, sip.skipped) == ("3002", "4001", [])


# --- rule 3 ------------------------------------------------------------------------------


def test_rule_3_exact_names_associate_deskphone_and_softphone():
    report = build_accounts(lines(dev("2001"), dev("3001", "App Server Port")), MIVB)
    assert [(a.key, a.deskphones, a.softphone) for a in report.accounts] == [
        ("Ann|Lee|Sales", ["2001"], "3001")]


def test_rule_3_names_differing_in_case_are_two_accounts():
    report = build_accounts(lines(dev("2001", first="Ann", last="Lee"),
                                  dev("3001", "App Server Port", first="ann", last="lee")), MIVB)
    assert [(a.key, a.numbers) for a in report.accounts] == [
        ("Ann|Lee|Sales", ["2001"]), ("ann|lee|Sales", ["3001"])]
    assert report.skipped == []
    [note] = report.notes
    assert (note.number, note.line, note.rule) == ("3001", 3, RULE_3)
    assert "were not associated" in note.message and "differ only in case," in note.message
    assert note.user == "ann lee (Sales)"  # whom the note concerns


def test_issues_name_the_user_of_the_rule_or_the_record():
    report = build_accounts(lines(
        dev("2001"), dev("2002"),  # rule 5: Ann's second deskphone
        dev("2003", "Hunt Group", first="Bo", last="Kim", dept="")), MIVB)
    assert [(i.number, i.user) for i in report.skipped] == [
        ("2002", "Ann Lee (Sales)"), ("2003", "Bo Kim")]


def test_csv_invalid_characters_in_columns_not_stored_are_ignored():
    text = (HEADER_ALL + "2001,App Server\x01 Port,A1:21:00\x02,Ann,Lee,Sales,P\x03RG 5,PRG,1,\n"
            "2002,5340 IP,,Bo,Kim,Ops,P\x03RG 5,PRG,,\n")
    items = list(read_devices(io.StringIO(text)))
    assert all(isinstance(i, Device) for i in items)
    assert [(d.device_type, d.mac, d.group) for d in items] == [
        ("App Server Port", "A1:21:00", "PRG 5"), ("5340 IP", "", "PRG 5")]
    report = build_accounts(items, MIVB)
    assert [(a.key, a.numbers) for a in report.accounts] == [("group:PRG 5", ["2002", "2001"])]


def test_rule_3_spacing_and_other_departments():
    spaced = build_accounts(lines(dev("2001"), dev("3001", "App Server Port", first="Ann ")),
                            MIVB)
    assert len(spaced.accounts) == 2
    assert "differ only in spacing" in spaced.notes[0].message
    other = build_accounts(lines(dev("2001"), dev("3001", "App Server Port", dept="HR")), MIVB)
    assert len(other.accounts) == 2 and other.notes == []  # different people: nothing to say


# --- rule 4 ------------------------------------------------------------------------------


@pytest.mark.parametrize("group_kind", ["PRG", "MDUG"])
def test_rule_4_the_pilot_identifies_the_account(group_kind):
    report = build_accounts(lines(
        dev("5002", "6920", "Front", "Desk", "Lobby", group="500", group_kind=group_kind),
        dev("5001", "5340 IP", "Carla", "Diaz", "Finance", group="500", group_kind=group_kind,
            pilot=True),
        dev("5003", "App Server Port", "carla", "DIAZ", "", group="500",
            group_kind=group_kind),
    ), MIVB)
    assert report.accounts == [PbxAccount(
        key="group:500", first_name="Carla", last_name="Diaz", department="Finance",
        deskphones=["5001", "5002"], softphone="5003", softphone_kind="minet", group="500",
        group_kind=group_kind, pilot="5001")]
    assert report.skipped == [] and report.notes == []


@pytest.mark.parametrize("group_kind", ["PRG", "MDUG"])
def test_rule_4_a_pilot_that_is_a_softphone_is_the_softphone(group_kind):
    report = build_accounts(lines(
        dev("5002", "6920", "Front", "Desk", "Lobby", group="9", group_kind=group_kind),
        dev("5001", "App Server Port", "Carla", "Diaz", "Finance", group="9",
            group_kind=group_kind, pilot=True),
    ), MIVB)
    [account] = report.accounts
    assert (account.key, account.first_name, account.softphone, account.softphone_kind,
            account.deskphones, account.pilot) == (
        "group:9", "Carla", "5001", "minet", ["5002"], "5001")


def test_rule_4_a_group_without_pilot_is_skipped():
    report = build_accounts(lines(dev("8001", group="800", group_kind="PRG"),
                                  dev("8002", "App Server Port", group="800",
                                      group_kind="PRG")), MIVB)
    assert report.accounts == []
    assert skipped(report) == {"8001": RULE_4, "8002": RULE_4}
    assert "no pilot" in report.skipped[0].message


def test_rule_4_several_pilots_and_misplaced_flags_are_noted():
    report = build_accounts(lines(
        dev("2001", group="7", group_kind="PRG", pilot=True),
        dev("2002", "6920", group="7", group_kind="PRG", pilot=True),
        dev("2004", "6930", group="7", group_kind="PRG", dynamic_extension=True),
        dev("2003", "6920", "Bob", "Stone", pilot=True, dynamic_extension=True),
    ), MIVB)
    assert [(a.key, a.pilot, a.numbers, a.dynamic_extension) for a in report.accounts] == [
        ("group:7", "2001", ["2001", "2002", "2004"], False),
        ("Bob|Stone|Sales", None, ["2003"], False)]
    assert [(i.number, i.rule) for i in report.notes] == [
        ("2002", RULE_4), ("2004", "dynamic-extensions-only"), ("2003", RULE_4),
        ("2003", "dynamic-extensions-only")]
    nameless = build_accounts(lines(dev("2001", first="", last="", group="7", pilot=True),
                                    dev("2002", group="7")), MIVB)
    assert nameless.accounts == [] and skipped(nameless) == {"2001": "no-name",
                                                             "2002": "no-name"}


# --- rule 5 ------------------------------------------------------------------------------


def test_rule_5_several_deskphones_without_group_keep_the_first_seen():
    report = build_accounts(lines(dev("2002", "6920"), dev("2001"), dev("2003", "SIP Device")),
                            MIVB)
    [account] = report.accounts
    assert account.deskphones == ["2002"]  # first seen, not the lowest number
    assert [(i.number, i.line, i.rule) for i in report.skipped] == [
        ("2001", 3, RULE_5), ("2003", 4, RULE_5)]
    assert report.skipped[0].message == (
        "Ann Lee (Sales): several deskphones without a PRG or MDUG holding all of them: only "
        "2002 was taken, 2001 is skipped (rule 5)")


def test_rule_5_several_minet_or_sip_softphones_without_group():
    minet = build_accounts(lines(dev("3001", "App Server Port"),
                                 dev("3002", "5020 IP", mac="A1:21:00:00:00:02")), MIVB)
    assert [a.numbers for a in minet.accounts] == [["3001"]]
    assert skipped(minet) == {"3002": RULE_5}
    assert "several Minet softphones" in minet.skipped[0].message
    sip = build_accounts(lines(dev("3001", "SIP Softphone"), dev("3002", "SIP Softphone")),
                         MIVB)
    assert [a.numbers for a in sip.accounts] == [["3001"]]
    assert "several SIP softphones" in sip.skipped[0].message


def test_rule_5_a_group_holding_all_devices_pulls_them_all_in():
    report = build_accounts(lines(
        dev("2001", group="7", group_kind="MDUG", pilot=True),
        dev("2002", "6920", group="7", group_kind="MDUG"),
        dev("2003", "SIP Device", group="7", group_kind="MDUG"),
        dev("3001", "App Server Port", group="7", group_kind="MDUG"),
        dev("3002", "5020 IP", mac="a12100000002", group="7", group_kind="MDUG"),
    ), MIVB)
    [account] = report.accounts
    assert (account.deskphones, account.softphone, account.extra_softphones) == (
        ["2001", "2002", "2003"], "3001", ["3002"])
    assert account.numbers == ["2001", "2002", "2003", "3001", "3002"]
    assert report.skipped == []


def test_rule_5_a_device_outside_the_users_group_is_not_pulled_in():
    report = build_accounts(lines(dev("2001", group="7", group_kind="PRG", pilot=True),
                                  dev("3001", "App Server Port")), MIVB)
    assert [a.numbers for a in report.accounts] == [["2001"]]
    assert skipped(report) == {"3001": RULE_5}
    assert "not part of the group" in report.skipped[0].message


# --- other checks --------------------------------------------------------------------------


def test_records_that_cannot_be_used_are_reported():
    report = build_accounts(lines(dev("2001"), dev("2001", "6920"), dev("7001", "Hunt Group"),
                                  dev("2002", first="", last="", dept="Lobby"), dev("")), MIVB)
    assert [a.numbers for a in report.accounts] == [["2001"]]
    assert [(i.line, i.rule) for i in report.skipped] == [
        (3, "duplicate-number"), (4, "device-type"), (5, "no-name"), (6, "missing-number")]
    with pytest.raises(ValueError, match="unknown platform"):
        build_accounts([], "MiVoice Connect")


def test_name_keys_escape_the_separator():
    report = build_accounts(lines(dev("1", first="a|b", last="c"), dev("2", first="a",
                                                                        last="b|c")), MIVB)
    assert [a.key for a in report.accounts] == ["a\\|b|c|Sales", "a|b\\|c|Sales"]


# --- a mixed data set --------------------------------------------------------------------


def account(key, first, last, dept, deskphones=(), softphone=None, softphone_kind=None,
            uc=None, group="", group_kind="", pilot=None, extra=(), dynamic=False):
    return PbxAccount(key, first, last, dept, list(deskphones), softphone, softphone_kind, uc,
                      group, group_kind, pilot, list(extra), dynamic)


MIXED_MIVB = [
    account("Ann|Lee|Sales", "Ann", "Lee", "Sales", ["2001"], "3001", "minet"),
    account("ann|lee|Sales", "ann", "lee", "Sales", ["2002"]),
    account("Bob|Stone|Support", "Bob", "Stone", "Support", ["2003"], uc="4001"),
    account("group:500", "Carla", "Diaz", "Finance", ["5001", "5002"], "5003", "minet",
            group="500", group_kind="PRG", pilot="5001", dynamic=True),
    account("group:600", "Dan", "Wu", "Ops", ["6002"], "6001", "sip", group="600",
            group_kind="MDUG", pilot="6001", extra=["6003"]),
    account("Eve|Park|HR", "Eve", "Park", "HR", ["2005"], "3003", "minet"),
    account("Frank|Ng|Lobby", "Frank", "Ng", "Lobby", ["2006"]),
    account("Gina|Roy|Legal", "Gina", "Roy", "Legal", uc="4002"),
]
MIXED_MIVB_SKIPPED = [
    (4, "3002", RULE_1), (7, "2004", RULE_5), (12, "5004", RULE_2), (13, "5005", RULE_1),
    (19, "3004", RULE_5), (20, "7001", "device-type"), (22, "2007", RULE_5),
    (24, "4003", "one-uc-endpoint"), (25, "2008", "no-name"), (26, "8001", RULE_4),
    (27, "8002", RULE_4),
]


def test_mixed_data_set_mivoice_business():
    devices = list(read_devices(DATA / "mixed_mivb.csv"))
    assert len(devices) == 26 and all(isinstance(d, Device) for d in devices)
    report = build_accounts(devices, MIVB)
    assert report.accounts == MIXED_MIVB
    assert [(i.line, i.number, i.rule) for i in report.skipped] == MIXED_MIVB_SKIPPED
    assert [(i.number, i.rule) for i in report.notes] == [("2002", RULE_3)]
    # Every record is either in exactly one account or explained.
    used = [n for a in report.accounts for n in a.numbers]
    assert sorted(used + [i.number for i in report.skipped]) == sorted(
        d.number for d in devices)


def test_mixed_data_set_dynamic_extensions_only():
    devices = list(read_devices(DATA / "mixed_mivb.csv"))
    report = build_accounts(devices, MIVB, dynamic_only=True)
    assert report.accounts == [MIXED_MIVB[3]]
    rules = skipped(report)
    assert rules["2001"] == rules["6001"] == rules["6003"] == "dynamic-extensions-only"
    assert (rules["5004"], rules["5005"]) == (RULE_2, RULE_1)
    assert len(report.skipped) == len(devices) - 3
    mdug = next(i for i in report.skipped if i.number == "6001")
    assert "pilot of MDUG 600 is not a dynamic extension" in mdug.message


def test_mivoice_office_250_has_no_groups():
    devices = list(read_devices(DATA / "mixed_mivb.csv"))
    report = build_accounts(devices, MIVO250)
    accounts = by_key(report)
    assert "group:500" not in accounts
    # Each record's names identify its account; rules 1, 2, 3 and 5 still apply.
    assert accounts["Carla|Diaz|Finance"] == account(
        "Carla|Diaz|Finance", "Carla", "Diaz", "Finance", ["5001"], "5005", "sip", uc="5004")
    assert accounts["Someone|Else|IT"].softphone == "5003"
    assert accounts["Hal|Ito|R&D"].numbers == ["8001", "8002"]
    assert skipped(report)["2007"] == RULE_5  # Carla's second deskphone
    assert skipped(report)["6003"] == RULE_5  # Dan's second SIP softphone
    assert "MiVoice Office 250 has none" in next(
        i.message for i in report.skipped if i.number == "6003")
    assert sum(i.rule == "platform" for i in report.notes) == 10

    dynamic = build_accounts(devices, MIVO250, dynamic_only=True)
    assert dynamic.accounts == []
    assert "MiVoice Office 250 has no PRG or MDUG" in dynamic.skipped[0].message


# --- rule 6 ------------------------------------------------------------------------------


def test_rule_6_numbers_gone_from_the_pbx_over_several_syncs():
    # First sync: the account has two PBX numbers and one the administrator added.
    current = [NumberState("2001", "pbx"), NumberState("3001", "pbx", referenced_by_status=True),
               NumberState("555", "manual")]
    assert numbers_to_keep(current, {"2001", "3001"}) == (["2001", "3001", "555"], [])

    # 3001 is deleted on the PBX but a dynamic status still points to it: it stays.
    kept, removed = numbers_to_keep(current, {"2001"})
    assert (kept, removed) == (["2001", "3001", "555"], [])
    why = {d.number: d.reason for d in decide_numbers(current, {"2001"})}
    assert why["3001"] == "a dynamic status still points to it (Make Call from)"
    assert why["555"] == "the administrator added it manually"
    assert why["2001"] == "it is on the PBX"

    # The user updates the status: the reference is gone, so the number goes.
    current = [NumberState("2001", "pbx"), NumberState("3001", "pbx"),
               NumberState("555", "manual")]
    kept, removed = numbers_to_keep(current, {"2001"})
    assert (kept, removed) == (["2001", "555"], ["3001"])
    assert not next(d for d in decide_numbers(current, {"2001"}) if d.number == "3001").keep

    # A manual number stays even when nothing on the PBX and no status mentions it.
    assert numbers_to_keep([NumberState("555", "manual")], set()) == (["555"], [])
    with pytest.raises(ValueError, match="origin"):
        numbers_to_keep([NumberState("1", "ldap")], set())


def test_rule_6_applies_to_mivoice_office_250_too():
    def pbx_numbers(devices):
        report = build_accounts(lines(*devices), MIVO250)
        return {n for a in report.accounts for n in a.numbers}

    first = pbx_numbers([dev("2001"), dev("3001", "App Server Port")])
    current = [NumberState(n, "pbx") for n in sorted(first)] + [NumberState("9", "manual")]
    current[1] = NumberState("3001", "pbx", referenced_by_status=True)
    second = pbx_numbers([dev("2001")])  # 3001 deleted on the MiVO250
    assert numbers_to_keep(current, second) == (["2001", "3001", "9"], [])
    current[1] = NumberState("3001", "pbx", referenced_by_status=False)
    assert numbers_to_keep(current, second) == (["2001", "9"], ["3001"])


# --- the CSV connector ---------------------------------------------------------------------


def test_csv_bom_extra_columns_and_header_spelling():
    devices = list(read_devices(DATA / "bom_extra_columns.csv"))
    assert devices == [
        Device("2001", "5340 IP", "00:08:5D:00:00:01", "Ann", "Lee", "Sales", line=2),
        Device("3001", "App Server Port", "", "Ann", "Lee", "Sales", line=3),
        Device("5001", "6920", "00:08:5D:00:00:02", "Zoë", "O'Brien, Jr.", "Finance", "500",
               "PRG", True, True, line=4),
        Device("5002", "5020 IP", "A1-21-00-00-00-09", "x", "y", "z", "500", "PRG", line=6),
    ]
    # Binary and text files (the BOM is dropped either way) give the same records.
    raw = (DATA / "bom_extra_columns.csv").read_bytes()
    binary = io.BytesIO(raw)
    assert list(read_devices(binary)) == devices and not binary.closed
    text = io.StringIO(raw.decode("utf-8"), newline="")
    assert list(read_devices(text)) == devices


def test_csv_missing_columns_are_named():
    with pytest.raises(CsvFormatError) as err:
        list(read_devices(DATA / "missing_columns.csv"))
    assert "missing required column(s): device_type, mac, last_name" in str(err.value)
    with pytest.raises(CsvFormatError, match="empty"):
        list(read_devices(io.StringIO("")))


def test_csv_bad_rows_are_reported_with_line_and_column():
    items = list(read_devices(DATA / "bad_rows.csv"))
    good = [i for i in items if isinstance(i, Device)]
    assert [(d.number, d.line) for d in good] == [("2001", 2), ("2004", 6), ("2008", 11)]
    issues = [(i.line, i.column, i.rule, i.note) for i in items if isinstance(i, Issue)]
    assert issues == [
        (3, "number", INVALID_ROW, False), (4, "pilot", INVALID_ROW, False),
        (5, "first_name", INVALID_CHARACTER, False), (6, "department", INVALID_CHARACTER, True),
        (7, "", INVALID_ROW, False), (8, "number", INVALID_ROW, False),
        (9, "group_kind", INVALID_ROW, False),
    ]
    # A bad department is left empty with a note naming the user; the record stays.
    assert good[1].department == "" and items[4].user == "Dan Wu"
    messages = {i.line: i.message for i in items if isinstance(i, Issue)}
    assert messages[3] == "line 3, column number: the directory number is missing"
    assert messages[4].startswith("line 4, column pilot: not a boolean")
    assert messages[5].startswith(
        "line 5, column first_name: invalid character U+0001 at position 3")
    assert messages[6].startswith(
        "line 6, column department: invalid character U+FFFE at position 4")
    assert messages[6].endswith("the department is left empty, the record is kept")
    assert "0x9, 0xA, 0xD, 0x20-0xD7FF, 0xE000-0xFFFD, 0x10000-0x10FFFF" in messages[6]
    assert "the row has 5 fields but the header has 10" in messages[7]


def test_csv_undecodable_bytes_and_valid_extremes():
    header = b"number,device_type,mac,first_name,last_name,department\n"
    data = header + b"2001,5340 IP,,Ann,L\xffee,Sales\n" + \
        "2002,5340 IP,,\t\U0010FFFF\ue000\ufffd\ud7ff,x,y\n".encode() + \
        b" , ,,,,\n+4420*#,SIP Device,,A,B,C\n"
    items = list(read_devices(io.BytesIO(data)))
    assert isinstance(items[0], Issue) and items[0].column == "last_name"
    assert "byte 0xFF is not valid UTF-8" in items[0].message
    assert isinstance(items[1], Device) and items[1].line == 3
    assert items[1].first_name == "\t\U0010FFFF\ue000\ufffd\ud7ff"
    # A row of empty fields is ignored; numbers may hold '*', '#' and a leading '+'.
    assert len(items) == 3 and (items[2].number, items[2].line) == ("+4420*#", 5)


def test_csv_connector_is_a_connector(tmp_path):
    connector = CsvConnector()
    assert connector.name == "csv" and isinstance(connector, Connector)
    with pytest.raises(ValueError, match="path"):
        connector.devices({})
    report = synchronize(connector, {"path": str(DATA / "bad_rows.csv")}, MIVB)
    assert [a.numbers for a in report.accounts] == [["2001"], ["2004"], ["2008"]]
    assert [i.line for i in report.skipped] == [3, 4, 5, 7, 8, 9]
    assert [(i.line, i.column) for i in report.notes] == [(6, "department")]


def test_csv_is_read_lazily():
    def lines_then_explode():
        yield "number,device_type,mac,first_name,last_name,department\n"
        yield "2001,5340 IP,,Ann,Lee,Sales\n"
        raise AssertionError("read past the first row")

    items = read_devices(lines_then_explode())
    assert next(items) == Device("2001", "5340 IP", "", "Ann", "Lee", "Sales", line=2)


def test_csv_streams_100000_rows_in_little_memory(tmp_path):
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as f:
        f.write("number,device_type,mac,first_name,last_name,department,group,group_kind,"
                "pilot,dynamic_extension\n")
        for n in range(100_000):
            f.write(f"{100000 + n},5340 IP,00:08:5D:00:00:00,First{n},Last{n},Dept{n % 50}"
                    f",,,,\n")
    assert path.stat().st_size > 5_000_000
    tracemalloc.start()
    try:
        count = sum(1 for item in read_devices(path) if isinstance(item, Device))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 100_000
    assert peak < 20_000_000, f"peak {peak} bytes"


def test_modules_are_pure_python():
    """pbx and pbx_csv load without the appliance package, Flask or the database."""
    code = f"""
import importlib, sys, types
package = types.ModuleType("pbxalone")
package.__path__ = [{str(SYNC_DIR)!r}]
sys.modules["pbxalone"] = package
importlib.import_module("pbxalone.pbx_csv")
loaded = {{m.split(".")[0] for m in sys.modules}}
assert not loaded & {{"flask", "sqlalchemy", "appliance", "werkzeug"}}, loaded
"""
    subprocess.run([sys.executable, "-c", code], check=True)
