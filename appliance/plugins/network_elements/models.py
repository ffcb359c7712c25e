"""The network_elements plugin's tables: platforms, the site's locations and departments,
licences, user templates and roles, provisioned users, and the flow-through queue."""

import json
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from appliance.db import db, utcnow

MIVB, MIVO250, MIVO400, MV5000, MXONE = (
    "MiVoice Business", "MiVoice Office 250", "MiVoice Office 400", "MiVoice 5000",
    "MiVoice MX-ONE")
PLATFORMS = (MIVB, MIVO250, MIVO400, MV5000, MXONE)

FLOW, BULK, IDS, MANUAL, PLATFORM = "flow_through", "bulk", "ids", "manual", "platform"
METHOD_LABELS = {
    FLOW: "Flow Through Provisioning", BULK: "Bulk Import from File",
    IDS: "Provisioning with IDS", MANUAL: "Manually provision users",
    PLATFORM: "Provision from management platform",
}
#: Seed 004: the provisioning methods each platform offers, in the seed's order.
METHODS = {
    MIVB: (FLOW, BULK, IDS, MANUAL),
    MIVO250: (BULK, MANUAL),
    MIVO400: (BULK, MANUAL),
    MV5000: (PLATFORM, IDS),
    MXONE: (PLATFORM, IDS),
}
RECOMMENDED = {MIVB: FLOW}
#: What Provisioning with IDS seeds from the directory: the element's users (MiVoice
#: Business) or an enterprise's Corporate Directory contacts (MiVoice 5000 / MX-ONE).
IDS_SEEDS = {MIVB: "users", MV5000: "contacts", MXONE: "contacts"}
#: Bulk file formats per platform (CSV: the platform's export; LDIF: sites with a directory).
FORMATS = {MIVB: ("csv", "ldif"), MIVO250: ("csv", "ldif"), MIVO400: ("csv", "ldif")}


def folded(column) -> tuple:
    """Sort by `column` case-insensitively (the same on SQLite and PostgreSQL, whatever the
    database's collation), then as stored, so equal folds keep one order."""
    return (func.lower(column), column)


class Element(db.Model):
    __tablename__ = "network_elements_element"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    platform: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(253))  # FQDN or IP address
    port: Mapped[int | None]  # management port, when not the platform's default
    username: Mapped[str] = mapped_column(String(64), default="")
    password_sealed: Mapped[str] = mapped_column(Text, default="")  # appliance.vault
    description: Mapped[str] = mapped_column(String(255), default="")
    connector: Mapped[str] = mapped_column(String(32), default="file")  # flow-through
    token_digest: Mapped[str] = mapped_column(String(64), default="")  # management platform
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    link: Mapped["ElementEnterprise | None"] = relationship(
        lazy="joined", cascade="all, delete-orphan", passive_deletes=True)

    @property
    def methods(self) -> tuple[str, ...]:
        return METHODS[self.platform]

    @property
    def enterprise_id(self) -> int | None:
        """The enterprise whose accounts its users are (accounts.py), or None."""
        return self.link.enterprise_id if self.link is not None else None

    @enterprise_id.setter
    def enterprise_id(self, value: int | None) -> None:
        if value is None:
            self.link = None  # delete-orphan: the row goes
        elif self.link is None:
            self.link = ElementEnterprise(enterprise_id=value)
        else:
            self.link.enterprise_id = value


class ElementEnterprise(db.Model):
    """The enterprise a network element belongs to: at most one row per element, none for
    an element of no enterprise. Deleting the enterprise deletes the row (what ON DELETE SET
    NULL on a column of the element would do). A table of its own because SQLite adds a
    foreign key to an existing table only by copying the table and dropping the old one,
    and dropping the element table deletes the IDS set-ups and queued changes that refer to
    it (ON DELETE CASCADE) and is refused while users live on it."""

    __tablename__ = "network_elements_element_enterprise"
    element_id: Mapped[int] = mapped_column(
        ForeignKey("network_elements_element.id", ondelete="CASCADE"), primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprise.id", ondelete="CASCADE"), index=True)


class Location(db.Model):
    __tablename__ = "network_elements_location"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(255), default="")


class Department(db.Model):
    __tablename__ = "network_elements_department"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(255), default="")


class Licence(db.Model):
    """How many licences of a type the site holds (services consume them)."""

    __tablename__ = "network_elements_licence"
    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(64), unique=True)
    available: Mapped[int] = mapped_column(default=0)


class Template(db.Model):
    """A user template or a role: the user and service data common to a group of users."""

    __tablename__ = "network_elements_template"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8), default="template")  # template or role
    services: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of service names
    location_id: Mapped[int | None] = mapped_column(
        ForeignKey("network_elements_location.id", ondelete="RESTRICT"))
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("network_elements_department.id", ondelete="RESTRICT"))
    location: Mapped[Location | None] = relationship()
    department: Mapped[Department | None] = relationship()

    @property
    def service_list(self) -> list[str]:
        return json.loads(self.services or "[]")


class User(db.Model):
    """A provisioned user with their services, on one network element."""

    __tablename__ = "network_elements_user"
    __table_args__ = (Index("ix_network_elements_user_last_first", "last_name", "first_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(128), unique=True)
    first_name: Mapped[str] = mapped_column(String(64), default="")
    last_name: Mapped[str] = mapped_column(String(64), default="")
    email: Mapped[str] = mapped_column(String(255), default="")
    number: Mapped[str] = mapped_column(String(32), default="")  # directory number
    element_id: Mapped[int] = mapped_column(
        ForeignKey("network_elements_element.id", ondelete="RESTRICT"), index=True)
    location_id: Mapped[int | None] = mapped_column(
        ForeignKey("network_elements_location.id", ondelete="RESTRICT"), index=True)
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("network_elements_department.id", ondelete="RESTRICT"), index=True)
    template_id: Mapped[int | None] = mapped_column(
        ForeignKey("network_elements_template.id", ondelete="RESTRICT"), index=True)
    services: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    origin: Mapped[str] = mapped_column(String(16), default="manual")  # how it was provisioned
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    element: Mapped[Element] = relationship()
    location: Mapped[Location | None] = relationship()
    department: Mapped[Department | None] = relationship()
    template: Mapped[Template | None] = relationship()

    @property
    def service_list(self) -> list[str]:
        return json.loads(self.services or "[]")


class Change(db.Model):
    """A user change queued for a MiVoice Business element (Flow Through Provisioning)."""

    __tablename__ = "network_elements_change"
    id: Mapped[int] = mapped_column(primary_key=True)
    element_id: Mapped[int] = mapped_column(
        ForeignKey("network_elements_element.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(8))  # add, update, delete
    login: Mapped[str] = mapped_column(String(128))
    payload: Mapped[str] = mapped_column(Text, default="{}")
    state: Mapped[str] = mapped_column(String(12), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class IdsSource(db.Model):
    """Integrated Directory Services: the directory an element's users or contacts are
    seeded from (users for MiVoice Business; Corporate Directory contacts for 5000/MX-ONE)."""

    __tablename__ = "network_elements_ids"
    element_id: Mapped[int] = mapped_column(
        ForeignKey("network_elements_element.id", ondelete="CASCADE"), primary_key=True)
    ldap: Mapped[str] = mapped_column(Text, default="{}")  # appliance.ldapform values
    password_sealed: Mapped[str] = mapped_column(Text, default="")
    template: Mapped[str] = mapped_column(String(64), default="")  # users: template/role name
    enterprise_id: Mapped[int | None] = mapped_column(
        ForeignKey("enterprise.id", ondelete="SET NULL"))  # contacts: whose directory

    @property
    def settings(self) -> dict:
        return json.loads(self.ldap or "{}")

    @property
    def source(self) -> str:
        """The Corporate Directory source its contacts carry."""
        return f"ids:{self.element_id}"
