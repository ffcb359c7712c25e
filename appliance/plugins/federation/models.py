"""The federation plugin's tables: the XMPP service settings and the federated servers."""

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from appliance.db import db, utcnow


class Settings(db.Model):
    """One row: how the embedded XMPP service is set up, and whether federation is on."""

    __tablename__ = "federation_settings"
    id: Mapped[int] = mapped_column(primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    domain: Mapped[str] = mapped_column(String(253), default="")
    c2s_port: Mapped[int] = mapped_column(default=5222)
    s2s_port: Mapped[int] = mapped_column(default=5269)
    interfaces: Mapped[str] = mapped_column(String(255), default="*")
    cert_file: Mapped[str] = mapped_column(String(1024), default="")
    key_file: Mapped[str] = mapped_column(String(1024), default="")
    ca_file: Mapped[str] = mapped_column(String(1024), default="")
    probe_password_sealed: Mapped[str] = mapped_column(Text, default="")  # appliance.vault
    applied_at: Mapped[datetime | None]
    apply_message: Mapped[str] = mapped_column(Text, default="")


class Server(db.Model):
    """A row of the Federated Servers table."""

    __tablename__ = "federation_server"
    id: Mapped[int] = mapped_column(primary_key=True)
    domain: Mapped[str] = mapped_column(String(253), unique=True)  # lower case
    nextplane: Mapped[bool] = mapped_column(default=False)
    server: Mapped[str] = mapped_column(String(253), default="")  # NextPlane only
    port: Mapped[int | None]  # NextPlane only
    origin: Mapped[str] = mapped_column(String(64), default="")  # "" or "peering:<id>"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
