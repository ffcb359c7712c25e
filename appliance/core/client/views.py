"""The account page (sign-in state, XMPP address, password, one-time link) and the public
page a user opens from a one-time link to set the password."""

from flask import Blueprint, abort, flash, render_template, request, url_for

from appliance.db import db
from appliance.host import host
from appliance.models import Enterprise
from appliance.ui import on_invalid, redirect_to, render

from . import accounts, service

bp = Blueprint("client", __name__)


def _page(acc, errors=None, link=None):
    return render("client/account.html", block="signin", acc=acc, info=accounts.as_dict(acc),
                  ent=db.session.get(Enterprise, acc.enterprise_id), errors=errors or {},
                  values={}, link=link, password=accounts.PASSWORD,
                  enabled=accounts.ACCOUNT.fields["enabled"], panels=host().account_panels)


@bp.get("/client-service/panel")
def panel():
    """The home page's panel: the XMPP service and who is signed in, per enterprise."""
    ents = db.session.scalars(db.select(Enterprise).order_by(Enterprise.name)).all()
    return render_template("client/panel.html", summary=accounts.online_summary(), ents=ents)


@bp.get("/accounts/<int:account_id>")
def account(account_id):
    return _page(accounts.account(account_id))


@bp.post("/accounts/<int:account_id>/enabled")
def enabled(account_id):
    acc = accounts.account(account_id)
    accounts.update(acc, {"enabled": request.form.get("enabled") == "on"})
    flash(f"{acc.login} may sign in." if acc.enabled else
          f"{acc.login} may no longer sign in; open sessions end within seconds.", "success")
    return redirect_to(url_for("client.account", account_id=acc.id))


@bp.post("/accounts/<int:account_id>/password")
def password(account_id):
    acc = accounts.account(account_id)
    on_invalid(lambda errors: _page(acc, errors))
    accounts.set_password(acc, request.form)
    flash(f"XMPP password of {acc.login} set.", "success")
    return redirect_to(url_for("client.account", account_id=acc.id))


@bp.post("/accounts/<int:account_id>/password-link")
def password_link(account_id):
    acc = accounts.account(account_id)
    on_invalid(lambda _: redirect_to(url_for("client.account", account_id=acc.id)))
    return _page(acc, link=accounts.make_link(acc))


@bp.route("/xmpp-password/<token>", methods=["GET", "POST"])
def link_password(token):
    """Public: the user of a one-time link sets the account's XMPP password."""
    acc = accounts.link_account(token[:200])
    if acc is None:
        abort(404, "This link is not valid: it was used, replaced or has expired. Ask your "
                   "administrator for a new one.")
    ent = db.session.get(Enterprise, acc.enterprise_id)

    address = service.xmpp_address(acc, ent)

    def form(errors):
        return render_template("client/link.html", acc=acc, address=address, errors=errors,
                               values={}, password=accounts.PASSWORD)
    if request.method == "GET":
        return form({})
    on_invalid(form)
    accounts.set_password(acc, request.form, via="link")
    return render_template("client/link.html", acc=acc, address=address, done=True)
