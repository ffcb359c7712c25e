"""The plugin's table. Its name starts with the plugin's name: hello_..."""

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from appliance.db import db, utcnow


class Greeting(db.Model):
    __tablename__ = "hello_greeting"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(80))
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
