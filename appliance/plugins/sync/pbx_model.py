"""PBX records and results: platforms, device kinds, rule names, Device, Issue,
PbxAccount, Report, the Connector protocol, and how a device is classified (rule 2)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

MIVB = "MiVoice Business"
MIVO250 = "MiVoice Office 250"
PLATFORMS = (MIVB, MIVO250)

# Device kinds returned by kind().
MINET_SOFTPHONE = "minet_softphone"
SIP_SOFTPHONE = "sip_softphone"
UC_ENDPOINT = "uc_endpoint"
DESKPHONE = "deskphone"
OTHER = "other"

# Rule names used in Issue.rule: the seed's rules 1-5, then the appliance's own checks.
RULE_1 = "rule-1-one-softphone-type"
RULE_2 = "rule-2-minet-softphone"
RULE_3 = "rule-3-exact-names"
RULE_4 = "rule-4-group-pilot"
RULE_5 = "rule-5-several-devices-need-group"
DEVICE_TYPE = "device-type"
DUPLICATE_NUMBER = "duplicate-number"
MISSING_NUMBER = "missing-number"
NO_NAME = "no-name"
ONE_UC_ENDPOINT = "one-uc-endpoint"
DYNAMIC_ONLY = "dynamic-extensions-only"
PLATFORM = "platform"

# Anything outside 0x9, 0xA, 0xD, 0x20-0xD7FF, 0xE000-0xFFFD, 0x10000-0x10FFFF (seed 003).
INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
MINET_MAC_PREFIX = "A12100"  # A1:21:00, separators removed
# Device types that are not a user's phone: records of these types are skipped.
NON_PHONE_TYPES = frozenset({
    "hunt group", "ring group", "voice mail", "voice mail port", "paging unit", "trunk",
    "conference unit",
})
KIND_LABEL = {
    DESKPHONE: "deskphones", MINET_SOFTPHONE: "Minet softphones",
    SIP_SOFTPHONE: "SIP softphones",
}


@dataclass(frozen=True, slots=True)
class Device:
    """One directory number of the node and the device behind it."""

    number: str
    device_type: str
    mac: str = ""
    first_name: str = ""
    last_name: str = ""
    department: str = ""
    group: str = ""
    group_kind: str = ""
    pilot: bool = False
    dynamic_extension: bool = False
    line: int = 0


@dataclass(frozen=True)
class Issue:
    """Why a record was skipped (or a note for the administrator)."""

    line: int
    number: str
    rule: str
    message: str
    column: str = ""
    user: str = ""  # who the record belongs to, as the node names them
    note: bool = False  # from a connector: the record was read, with this note


@dataclass
class PbxAccount:
    """An account built from the node: its identity and its phone numbers."""

    key: str
    first_name: str
    last_name: str
    department: str
    deskphones: list[str] = field(default_factory=list)
    softphone: str | None = None
    softphone_kind: str | None = None
    uc_endpoint: str | None = None
    group: str = ""
    group_kind: str = ""
    pilot: str | None = None
    extra_softphones: list[str] = field(default_factory=list)
    dynamic_extension: bool = False

    @property
    def numbers(self) -> list[str]:
        """Every number of the account: deskphones, softphones, then the UC endpoint."""
        out = list(self.deskphones)
        if self.softphone:
            out.append(self.softphone)
        out += self.extra_softphones
        if self.uc_endpoint:
            out.append(self.uc_endpoint)
        return out


@dataclass
class Report:
    """The accounts built, every skipped record with its rule, and notes."""

    accounts: list[PbxAccount] = field(default_factory=list)
    skipped: list[Issue] = field(default_factory=list)
    notes: list[Issue] = field(default_factory=list)

    def skip(self, device: Device, rule: str, message: str, user: str = "") -> None:
        """Record that device is not synchronized, and why (user: whose it is, if not
        the device's own names)."""
        self.skipped.append(Issue(device.line, device.number, rule, message,
                                  user=user or names_of(device)))

    def note(self, device: Device, rule: str, message: str, user: str = "") -> None:
        """Record something the administrator should know about a synchronized record."""
        self.notes.append(Issue(device.line, device.number, rule, message, note=True,
                                user=user or names_of(device)))


def names_of(device: Device) -> str:
    """The user a device's names designate: "First Last (Department)"."""
    name = f"{device.first_name} {device.last_name}".strip()
    return f"{name} ({device.department})" if device.department.strip() else name


def key_text(value: str) -> str:
    """value with each invalid character written \\uXXXX: an account key stores none."""
    return INVALID.sub(lambda m: f"\\u{ord(m.group()):04x}", value)


@runtime_checkable
class Connector(Protocol):
    """Where a node's device records come from (the CSV file, or a partner's live link)."""

    name: str

    def devices(self, node_settings: Mapping[str, Any]) -> Iterator[Device | Issue]:
        """Stream the node's records; an Issue stands for a record that could not be read."""
        ...


# --- classification (rule 2) -------------------------------------------------------------


def _norm_type(device_type: str) -> str:
    return " ".join(device_type.split()).casefold()


def is_minet_mac(mac: str) -> bool:
    """Whether mac starts with A1:21:00 (any case; ':' or '-' separators, or none)."""
    bare = mac.strip().replace(":", "").replace("-", "").upper()
    return bare.startswith(MINET_MAC_PREFIX)


def kind(device: Device) -> str:
    """Classify a device: minet_softphone, uc_endpoint, sip_softphone, deskphone or other."""
    dtype = _norm_type(device.device_type)
    words = dtype.split()
    if dtype == "app server port" or (dtype == "5020 ip" and is_minet_mac(device.mac)):
        return MINET_SOFTPHONE
    if dtype == "micollab client endpoint":
        return UC_ENDPOINT
    if "sip" in words and "softphone" in words:
        return SIP_SOFTPHONE
    if not dtype or dtype in NON_PHONE_TYPES:
        return OTHER
    return DESKPHONE
