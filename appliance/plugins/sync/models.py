"""The sync plugin's tables: per-enterprise settings, synchronizers, their last reports,
and the phone numbers PBX synchronization gives accounts."""

import json
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from appliance.db import db, utcnow

LDAP, PBX = "ldap", "pbx"
MODES = {LDAP: "AD/LDAP", PBX: "PBX Node"}
PLATFORMS = ("MiVoice Business", "MiVoice Office 250")


class SyncSettings(db.Model):
    """The enterprise's synchronization type and its PBX-wide options."""

    __tablename__ = "sync_settings"
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprise.id", ondelete="CASCADE"), primary_key=True)
    mode: Mapped[str] = mapped_column(String(8), default=LDAP)
    feature_profile: Mapped[str] = mapped_column(String(64), default="Default")
    dynamic_only: Mapped[bool] = mapped_column(default=False)


class Synchronizer(db.Model):
    """An AD/LDAP synchronizer, or a PBX node (kind PBX)."""

    __tablename__ = "sync_synchronizer"
    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprise.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(64))
    ldap: Mapped[str] = mapped_column(Text, default="{}")  # appliance.ldapform values
    password_sealed: Mapped[str] = mapped_column(Text, default="")  # appliance.vault
    platform: Mapped[str] = mapped_column(String(32), default="")  # PBX nodes
    address: Mapped[str] = mapped_column(String(253), default="")
    connector: Mapped[str] = mapped_column(String(32), default="csv")
    connector_settings: Mapped[str] = mapped_column(Text, default="{}")
    schedule: Mapped[str] = mapped_column(Text, default="{}")  # appliance.jobs.days_spec
    max_drop: Mapped[int] = mapped_column(default=20)  # percent of accounts one sync may remove
    attention: Mapped[str] = mapped_column(Text, default="")  # why it needs the admin
    last_count: Mapped[int | None]  # entries the last successful sync read
    last_report: Mapped[str] = mapped_column(Text, default="{}")  # when, took, counts, state
    # The directory's change marker after the last good run (ldapsync.Cursor), and the days
    # between full reconciliations of an incremental synchronizer.
    cursor: Mapped[str] = mapped_column(Text, default="{}")
    full_days: Mapped[int] = mapped_column(default=7)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def source(self) -> str:
        return f"sync:{self.id}"

    @property
    def settings(self) -> dict:
        return json.loads(self.ldap or "{}")

    @property
    def report(self) -> dict:
        return json.loads(self.last_report or "{}")

    @property
    def schedule_spec(self) -> dict:
        return json.loads(self.schedule or "{}")

    @property
    def node_settings(self) -> dict:
        return json.loads(self.connector_settings or "{}")


class SyncIssue(db.Model):
    """An entry the last sync skipped or could not store, and why."""

    __tablename__ = "sync_issue"
    id: Mapped[int] = mapped_column(primary_key=True)
    synchronizer_id: Mapped[int] = mapped_column(
        ForeignKey("sync_synchronizer.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8), default="skipped")  # skipped or failed
    entry: Mapped[str] = mapped_column(String(1024))  # DN, or CSV line and number
    attribute: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(Text)


class Number(db.Model):
    """A phone number of an account: from the PBX, or added by the administrator."""

    __tablename__ = "sync_number"
    __table_args__ = (UniqueConstraint("account_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16), default="deskphone")
    origin: Mapped[str] = mapped_column(String(8), default="pbx")  # pbx or manual
    on_pbx: Mapped[bool] = mapped_column(default=True)


class StatusRef(db.Model):
    """A dynamic status of an account whose "Make Call from" points at a number."""

    __tablename__ = "sync_status_ref"
    __table_args__ = (Index("ix_sync_status_ref_account_number", "account_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(64))
