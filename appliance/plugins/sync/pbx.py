"""PBX node synchronization rules 1 to 5: device records in, accounts and a report out.

Pure Python (no Flask, no database). It follows the "Synchronization Rules for MiVoice
Business" of the Synchronization tab; docs/pbx-csv.md explains every definition used here.
The records and results are in pbx_model, rule 6 (numbers) in pbx_numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .pbx_model import (
    DESKPHONE,
    DEVICE_TYPE,
    DUPLICATE_NUMBER,
    DYNAMIC_ONLY,
    KIND_LABEL,
    MINET_SOFTPHONE,
    MISSING_NUMBER,
    MIVO250,
    NO_NAME,
    ONE_UC_ENDPOINT,
    OTHER,
    PLATFORM,
    PLATFORMS,
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
    Report,
    key_text,
    kind,
)

# --- a user while the rules run --------------------------------------------------------


@dataclass
class UserDevices:
    """One user's devices while the rules run (the rules remove what they skip)."""

    key: str
    first_name: str
    last_name: str
    department: str
    devices: list[Device]
    group: str = ""
    group_kind: str = ""
    pilot: Device | None = None
    dynamic: bool = False

    @property
    def label(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        where = f"{self.group_kind or 'group'} {self.group}: " if self.group else ""
        return f"{where}{name} ({self.department})" if self.department else f"{where}{name}"

    @property
    def grouped(self) -> bool:
        return bool(self.group)


def _escape(value: str) -> str:
    return key_text(value.replace("\\", "\\\\").replace("|", "\\|"))


def names_key(first_name: str, last_name: str, department: str) -> str:
    """Account key of a user without a group: first|last|department, exactly ('|' escaped)."""
    return "|".join(_escape(v) for v in (first_name, last_name, department))


def group_key(group: str) -> str:
    """Account key of a user with a PRG or MDUG."""
    return "group:" + _escape(group)


def _names(device: Device) -> tuple[str, str, str]:
    return (device.first_name, device.last_name, device.department)


def _spaced(names: tuple[str, str, str]) -> tuple[str, ...]:
    return tuple(" ".join(v.split()) for v in names)


def _loose(names: tuple[str, str, str]) -> tuple[str, ...]:
    return tuple(v.casefold() for v in _spaced(names))


def _show(names: tuple[str, str, str]) -> str:
    first, last, dept = names
    return f"{first!r} {last!r} / {dept!r}"


# --- the rules, one function each --------------------------------------------------------


def rule_1_one_softphone_type(user: UserDevices, report: Report) -> None:
    """Rule 1: a Minet softphone or a SIP softphone, not both (Minet preferred)."""
    minet = [d for d in user.devices if kind(d) == MINET_SOFTPHONE]
    if not minet:
        return
    for d in [d for d in user.devices if kind(d) == SIP_SOFTPHONE]:
        report.skip(d, RULE_1, (
            f"{user.label} has a Minet softphone ({minet[0].number}) and a SIP softphone: a "
            f"user has one or the other, not both; the Minet softphone is preferred, SIP "
            f"softphone {d.number} is skipped (rule 1)"), user.label)
        user.devices.remove(d)


def rule_2_minet_softphone(user: UserDevices, report: Report) -> None:
    """Rule 2: a MiCollab Client Endpoint is the UC Endpoint only without a Minet softphone."""
    minet = [d for d in user.devices if kind(d) == MINET_SOFTPHONE]
    endpoints = [d for d in user.devices if kind(d) == UC_ENDPOINT]
    for i, d in enumerate(endpoints):
        if minet:
            report.skip(d, RULE_2, (
                f"MiCollab Client Endpoint {d.number} is not used: {user.label} has a Minet "
                f"softphone ({minet[0].number}), which is the user's softphone (rule 2)"),
                user.label)
        elif i:
            report.skip(d, ONE_UC_ENDPOINT, (
                f"{user.label} has several MiCollab Client Endpoints: only "
                f"{endpoints[0].number} is the UC Endpoint, {d.number} is skipped"), user.label)
        else:
            continue
        user.devices.remove(d)


def rule_3_exact_names(devices: Iterable[Device], report: Report) -> list[UserDevices]:
    """Rule 3: without a PRG or MDUG, phones belong together only when first name, last name
    and department match exactly, case included."""
    users: dict[tuple[str, str, str], UserDevices] = {}
    for d in devices:
        names = _names(d)
        if not (d.first_name.strip() or d.last_name.strip()):
            report.skip(d, NO_NAME, (
                f"{d.number} has no first or last name on the node: it cannot be "
                f"associated with a user"))
            continue
        user = users.get(names)
        if user is None:
            users[names] = UserDevices(names_key(*names), *names, devices=[d])
        else:
            user.devices.append(d)
    return list(users.values())


def _note_near_names(users: list[UserDevices], report: Report) -> None:
    """Rule 3, for the administrator: accounts without a group whose names differ only in
    case or spacing."""
    first_seen: dict[tuple[str, ...], UserDevices] = {}
    for user in users:
        if user.grouped:
            continue
        names = (user.first_name, user.last_name, user.department)
        other = first_seen.setdefault(_loose(names), user)
        if other is user:
            continue
        others = (other.first_name, other.last_name, other.department)
        if _spaced(names) == _spaced(others):
            how = "spacing"
        elif tuple(v.casefold() for v in names) == tuple(v.casefold() for v in others):
            how = "case"
        else:
            how = "case and spacing"
        report.note(user.devices[0], RULE_3, (
            f"{_show(names)} ({', '.join(d.number for d in user.devices)}) and "
            f"{_show(others)} ({', '.join(d.number for d in other.devices)}) were not "
            f"associated: their names differ only in {how}, and phones are associated only "
            f"when first name, last name and department match exactly (rule 3)"), user.label)


def rule_4_group_pilot(group: str, members: list[Device], report: Report) -> UserDevices | None:
    """Rule 4: the pilot of a PRG or MDUG identifies the account; members' names do not
    matter. Returns None (members skipped) when the group cannot be identified."""
    pilots = [d for d in members if d.pilot]
    label = f"{members[0].group_kind or 'group'} {group}"
    if not pilots:
        for d in members:
            report.skip(d, RULE_4, (
                f"{label} has no pilot in the data: the pilot's names identify the account, "
                f"so {d.number} is skipped (rule 4)"))
        return None
    pilot = pilots[0]
    for d in pilots[1:]:
        report.note(d, RULE_4, (
            f"{label} has several pilots: {pilot.number} (first seen) is the pilot, "
            f"{d.number} is an ordinary member (rule 4)"))
    if not (pilot.first_name.strip() or pilot.last_name.strip()):
        for d in members:
            report.skip(d, NO_NAME, (
                f"the pilot {pilot.number} of {label} has no first or last name: the "
                f"account cannot be identified, {d.number} is skipped (rule 4)"))
        return None
    kinds = {d.group_kind for d in members} - {""}
    if len(kinds) > 1:
        report.note(pilot, RULE_4, (
            f"group {group} is marked both {' and '.join(sorted(kinds))}: the pilot's "
            f"kind ({pilot.group_kind or 'none'}) is used"))
    ordered = [pilot] + [d for d in members if d is not pilot]
    return UserDevices(group_key(group), *_names(pilot), devices=ordered, group=group,
                 group_kind=pilot.group_kind, pilot=pilot, dynamic=pilot.dynamic_extension)


def rule_5_several_devices_need_group(user: UserDevices, report: Report, why: str = "") -> None:
    """Rule 5: several deskphones, SIP softphones or Minet softphones are all kept only when
    a PRG or MDUG holds all of them; otherwise the first seen is kept."""
    if user.grouped:
        return
    for k, label in KIND_LABEL.items():
        same = [d for d in user.devices if kind(d) == k]
        for d in same[1:]:
            report.skip(d, RULE_5, (
                f"{user.label}: several {label} without a PRG or MDUG holding all of them"
                f"{why}: only {same[0].number} was taken, {d.number} is skipped (rule 5)"),
                user.label)
            user.devices.remove(d)


def _outside_group(users: list[UserDevices], pilots: set[tuple[str, str, str]],
                   report: Report) -> list[UserDevices]:
    """Rule 5: a device outside the group of the user its names designate is not pulled in."""
    kept = []
    for user in users:
        names = (user.first_name, user.last_name, user.department)
        if names not in pilots:
            kept.append(user)
            continue
        for d in user.devices:
            report.skip(d, RULE_5, (
                f"{d.number} has the same names as the pilot of a PRG or MDUG "
                f"({_show(names)}) but is not part of the group: only the group's devices "
                f"are pulled in for that user, {d.number} is skipped (rule 5)"))
    return kept


def dynamic_extensions_only(users: list[UserDevices], platform: str,
                            report: Report) -> list[UserDevices]:
    """The "Synchronize Dynamic Extensions only" option: keep the users whose PRG or MDUG
    pilot is a dynamic extension; skip every other record."""
    kept = []
    for user in users:
        if user.dynamic:
            kept.append(user)
            continue
        if platform == MIVO250:
            why = "MiVoice Office 250 has no PRG or MDUG, so no dynamic extensions"
        elif user.grouped:
            why = f"the pilot of {user.group_kind or 'group'} {user.group} is not a dynamic " \
                  f"extension"
        else:
            why = "it is in no PRG or MDUG, so it has no dynamic extension"
        for d in user.devices:
            report.skip(d, DYNAMIC_ONLY, (
                f"{d.number} is skipped by 'Synchronize Dynamic Extensions only': {why}"),
                user.label)
    return kept


# --- putting it together -----------------------------------------------------------------


def _accept(devices: Iterable[Device], report: Report) -> list[Device]:
    """Records with a number, not seen before, of a phone device type."""
    seen: set[str] = set()
    out = []
    for d in devices:
        if not d.number.strip():
            report.skip(d, MISSING_NUMBER, "the record has no directory number")
        elif d.number in seen:
            report.skip(d, DUPLICATE_NUMBER, (
                f"{d.number} appears more than once: the first record is used"))
        elif kind(d) == OTHER:
            what = f"device type {d.device_type!r}" if d.device_type.strip() else "no device type"
            report.skip(d, DEVICE_TYPE, f"{d.number} has {what}: not a user's phone")
        else:
            seen.add(d.number)
            out.append(d)
    return out


def _without_groups(devices: list[Device], report: Report) -> list[Device]:
    """MiVoice Office 250 has no PRG or MDUG: group columns are ignored."""
    out = []
    for d in devices:
        if d.group or d.group_kind or d.pilot:
            report.note(d, PLATFORM, (
                f"MiVoice Office 250 has no PRG or MDUG: the group of {d.number} is ignored"))
            d = replace(d, group="", group_kind="", pilot=False)
        out.append(d)
    return out


def _split(devices: list[Device], report: Report) -> tuple[dict[str, list[Device]],
                                                            list[Device]]:
    groups: dict[str, list[Device]] = {}
    alone = []
    for d in devices:
        if d.group:
            groups.setdefault(d.group, []).append(d)
            if d.dynamic_extension and not d.pilot:
                report.note(d, DYNAMIC_ONLY, (
                    f"{d.number} is marked as a dynamic extension but is not its group's "
                    f"pilot: the mark is ignored"))
            continue
        if d.pilot or d.group_kind:
            report.note(d, RULE_4, (
                f"{d.number} is marked as a pilot or with a group kind but has no group: it "
                f"is treated as a device without a PRG or MDUG"))
        if d.dynamic_extension:
            report.note(d, DYNAMIC_ONLY, (
                f"{d.number} is marked as a dynamic extension but is in no PRG or MDUG: "
                f"the mark is ignored"))
        alone.append(d)
    return groups, alone


def _account(user: UserDevices) -> PbxAccount:
    by_kind: dict[str, list[str]] = {}
    for d in user.devices:
        by_kind.setdefault(kind(d), []).append(d.number)
    softphone_kind = None
    softphones: list[str] = []
    if MINET_SOFTPHONE in by_kind:
        softphone_kind, softphones = "minet", by_kind[MINET_SOFTPHONE]
    elif SIP_SOFTPHONE in by_kind:
        softphone_kind, softphones = "sip", by_kind[SIP_SOFTPHONE]
    return PbxAccount(
        key=user.key, first_name=user.first_name, last_name=user.last_name,
        department=user.department, deskphones=by_kind.get(DESKPHONE, []),
        softphone=softphones[0] if softphones else None, softphone_kind=softphone_kind,
        uc_endpoint=(by_kind.get(UC_ENDPOINT) or [None])[0], group=user.group,
        group_kind=user.group_kind,
        pilot=user.pilot.number if user.pilot in user.devices else None,
        extra_softphones=softphones[1:], dynamic_extension=user.dynamic)


def build_accounts(devices: Iterable[Device], platform: str,
                   dynamic_only: bool = False) -> Report:
    """Turn a node's device records into accounts, following rules 1-5 (MiVoice Business)
    or their MiVoice Office 250 subset; every record not used is in report.skipped."""
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}: expected one of {PLATFORMS}")
    report = Report()
    records = _accept(devices, report)
    if platform == MIVO250:
        records = _without_groups(records, report)
    groups, alone = _split(records, report)
    grouped = [u for g, members in groups.items()
               if (u := rule_4_group_pilot(g, members, report)) is not None]
    pilots = {(u.first_name, u.last_name, u.department) for u in grouped}
    users = grouped + _outside_group(rule_3_exact_names(alone, report), pilots, report)
    if dynamic_only:
        users = dynamic_extensions_only(users, platform, report)
    why = " (MiVoice Office 250 has none)" if platform == MIVO250 else ""
    for user in users:
        rule_1_one_softphone_type(user, report)
        rule_2_minet_softphone(user, report)
        rule_5_several_devices_need_group(user, report, why)
    position = {id(d): i for i, d in enumerate(records)}
    users = [u for u in users if u.devices]
    users.sort(key=lambda u: min(position[id(d)] for d in u.devices))
    _note_near_names(users, report)
    report.accounts = [_account(u) for u in users]
    report.skipped.sort(key=lambda i: i.line)
    report.notes.sort(key=lambda i: i.line)
    return report


def synchronize(connector: Connector, node_settings: Mapping[str, Any], platform: str,
                dynamic_only: bool = False) -> Report:
    """Stream a connector's records into build_accounts; unreadable records are skipped,
    a connector's notes (Issue.note) join the rules' notes."""
    unreadable: list[Issue] = []
    read_notes: list[Issue] = []

    def devices() -> Iterator[Device]:
        for item in connector.devices(node_settings):
            if isinstance(item, Issue):
                (read_notes if item.note else unreadable).append(item)
            else:
                yield item

    report = build_accounts(devices(), platform, dynamic_only)
    report.skipped = sorted(unreadable + report.skipped, key=lambda i: i.line)
    report.notes = sorted(read_notes + report.notes, key=lambda i: i.line)
    return report
