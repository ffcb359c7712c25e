"""One place for each change, shared by the page, the API and the CLI."""

from flask import g
from sqlalchemy import select

from appliance import audit
from appliance.db import db
from appliance.validation import Field, Schema, length

from .models import Greeting

# One schema validates the HTML form and the JSON body, and documents the API.
GREETING = Schema("HelloGreeting", Field("text", "Greeting", (length(1, 80),)))


def as_dict(gr: Greeting) -> dict:
    return {"id": gr.id, "text": gr.text, "created_by": gr.created_by,
            "created_at": gr.created_at.isoformat() + "Z"}


def greetings() -> list[Greeting]:
    return list(db.session.scalars(select(Greeting).order_by(Greeting.id)))


def add(data) -> Greeting:
    """Validate and store a greeting; raise appliance.validation.Invalid, storing nothing."""
    data = GREETING.validate(data)
    user = g.get("user")
    gr = Greeting(text=data["text"], created_by=user.username if user else "")
    db.session.add(gr)
    db.session.flush()
    audit.record("create", "greeting", gr.id, gr.text, after=data, commit=False)
    db.session.commit()
    return gr
