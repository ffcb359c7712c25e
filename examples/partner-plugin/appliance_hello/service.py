"""One place for each change, shared by the page, the API and the CLI."""

from flask import g
from sqlalchemy import select

from appliance import audit
from appliance.api import INT, STR, obj
from appliance.db import db
from appliance.listing import Column, Page, paginate
from appliance.validation import Field, Schema, length

from .models import Greeting

# One schema validates the HTML form and the JSON body, documents the API and renders the
# form's field (macros.input): label, required mark, maxlength and help come from here.
GREETING = Schema("HelloGreeting", Field("text", "Greeting", (length(1, 80),),
                                         help="At most 80 characters."))
GREETING_JSON = obj(["id", "text"], id=INT, text=STR, created_by=STR, created_at=STR)
COLUMNS = [Column("id", "Added", Greeting.id), Column("text", "Greeting", Greeting.text)]


def as_dict(gr: Greeting) -> dict:
    return {"id": gr.id, "text": gr.text, "created_by": gr.created_by,
            "created_at": gr.created_at.isoformat() + "Z"}


def greetings() -> list[Greeting]:
    return list(db.session.scalars(select(Greeting).order_by(Greeting.id)))


def greetings_page(args, per_page: int, adjustable: bool = False) -> Page:
    """One page of the greetings, searched (?q=) and sorted (?sort=, ?dir=) as `args` ask."""
    return paginate(select(Greeting), COLUMNS, args, "id", search=(Greeting.text,),
                    per_page=per_page, tiebreak=Greeting.id, adjustable=adjustable)


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
