"""The federation plugin's tables: its switch and the federated servers."""

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from appliance.db import db, utcnow


class Settings(db.Model):
    """One row: whether federation is on, and the Test account's password (the XMPP
    service's own settings are the host's: appliance.xmpp.service)."""

    __tablename__ = "federation_settings"
    id: Mapped[int] = mapped_column(primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    probe_password_sealed: Mapped[str] = mapped_column(Text, default="")  # appliance.vault


class Server(db.Model):
    """A row of the Federated Servers table."""

    __tablename__ = "federation_server"
    id: Mapped[int] = mapped_column(primary_key=True)
    domain: Mapped[str] = mapped_column(String(253), unique=True)  # lower case
    nextplane: Mapped[bool] = mapped_column(default=False)
    server: Mapped[str] = mapped_column(String(253), default="")  # a route (NextPlane: needed)
    port: Mapped[int | None]
    origin: Mapped[str] = mapped_column(String(64), default="")  # "" or "peering:<id>"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
