"""The peering plugin's table: peer servers of an enterprise."""

import json
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from appliance.db import db, utcnow

MCS, EXTERNAL = "mcs", "external"
TYPES = {MCS: "MiCollab Client Service", EXTERNAL: "External"}


class Peer(db.Model):
    __tablename__ = "peering_peer"
    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprise.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # MCS or EXTERNAL
    description: Mapped[str] = mapped_column(String(64))
    # MiCollab Client Service peers
    hostname: Mapped[str] = mapped_column(String(253), default="")
    port: Mapped[int] = mapped_column(default=443)
    peer_eid: Mapped[str] = mapped_column(String(32), default="")
    dialing_prefix: Mapped[str] = mapped_column(String(20), default="")
    key_sealed: Mapped[str] = mapped_column(Text, default="")  # appliance.vault
    # External peers: the IM server's AD/LDAP directory (password sealed apart)
    ldap: Mapped[str] = mapped_column(Text, default="{}")
    ldap_password_sealed: Mapped[str] = mapped_column(Text, default="")
    schedule: Mapped[str] = mapped_column(Text, default="{}")  # appliance.jobs.days_spec
    # The peer's change feed: the cursor its last sync ended at ("" none: read all), and
    # every how many days a sync reads everything again (0: every sync); the last such.
    feed_cursor: Mapped[str] = mapped_column(String(32), default="", server_default="")
    full_days: Mapped[int] = mapped_column(default=7, server_default="7")
    full_at: Mapped[datetime | None]
    # What the status job found
    version: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(32), default="unknown")
    status_message: Mapped[str] = mapped_column(Text, default="")
    checked_at: Mapped[datetime | None]
    peer_upn_logins: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def source(self) -> str:
        """The Corporate Directory source of the contacts this peer brought in."""
        return f"peering:{self.id}"

    @property
    def type_label(self) -> str:
        return TYPES[self.kind]

    @property
    def server(self) -> str:
        """The Server column: the FQDN, N/A for external peers."""
        return self.hostname if self.kind == MCS else "N/A"

    @property
    def admin_url(self) -> str | None:
        if self.kind != MCS:
            return None
        return f"https://{self.hostname}" + ("" if self.port == 443 else f":{self.port}") + "/"

    @property
    def schedule_spec(self) -> dict:
        return json.loads(self.schedule or "{}")

    @property
    def ldap_settings(self) -> dict:
        return json.loads(self.ldap or "{}")
