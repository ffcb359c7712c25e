"""Administrators, sessions, login lock-out and API tokens."""

import hashlib
import secrets
import time
from datetime import timedelta

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    has_request_context,
    jsonify,
    redirect,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import delete, func, select
from werkzeug.security import check_password_hash, generate_password_hash

from appliance import audit
from appliance.db import db, utcnow
from appliance.models import ApiToken, LoginFailure, User
from appliance.ui import render
from appliance.validation import Field, Invalid, Schema, length, only

bp = Blueprint("auth", __name__)

# Endpoints reachable without a session.
PUBLIC = {"auth.login", "auth.setup", "static", "health"}

ADMIN = Schema(
    "Administrator",
    Field("username", "Username", (length(1, 64), only(r"[A-Za-z0-9._@-]",
          "letters, digits, dots, dashes, underscores and @"))),
    Field("password", "Password", (length(10, 256),), secret=True),
)


class Sessions(SecureCookieSessionInterface):
    """Mark the session cookie Secure whenever the request came over TLS."""

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)


def username() -> str:
    """The administrator behind the current request, or "" (a job, a peer, a platform)."""
    user = g.get("user") if has_request_context() else None
    return user.username if user else ""


def has_admin() -> bool:
    return db.session.scalar(select(func.count()).select_from(User)) > 0


def create_admin(username: str, password: str) -> User:
    """Validate and store a new administrator; raise Invalid on a bad name or password."""
    data = ADMIN.validate({"username": username, "password": password})
    if db.session.scalar(select(User).where(User.username == data["username"])):
        raise Invalid({"username": ("unique", "Username is already in use")})
    user = User(username=data["username"], password_hash=generate_password_hash(password))
    db.session.add(user)
    db.session.commit()
    return user


def new_token(user: User, label: str = "") -> str:
    """Create an API token for `user`; only its digest is stored, so show it once."""
    token = "apl_" + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, digest=_digest(token), label=label[:64]))
    db.session.commit()
    return token


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_user(header: str | None) -> User | None:
    if not header or not header.startswith("Bearer "):
        return None
    tok = db.session.scalar(select(ApiToken).where(ApiToken.digest == _digest(header[7:].strip())))
    if tok is None:
        return None
    now = utcnow()
    if tok.last_used_at is None or now - tok.last_used_at > timedelta(minutes=1):
        tok.last_used_at = now  # at most one write a minute per token, not one per call
        db.session.commit()
    return tok.user


def _locked_for(username: str, address: str) -> int:
    """Seconds until this username (or address) may try again; 0 when not locked."""
    cfg = current_app.config
    window = timedelta(seconds=cfg["LOGIN_LOCK_SECONDS"])
    since = utcnow() - window
    limit = cfg["LOGIN_MAX_FAILURES"]
    for col, value, n in ((LoginFailure.username, username, limit),
                          (LoginFailure.address, address, limit * 4)):
        times = db.session.scalars(
            select(LoginFailure.at).where(col == value, LoginFailure.at > since)
            .order_by(LoginFailure.at.desc()).limit(n)).all()
        if len(times) >= n:
            return max(1, int((times[-1] + window - utcnow()).total_seconds()))
    return 0


def load_user() -> None:
    """Set g.user from the session (HTML) before each request."""
    uid = session.get("uid")
    g.user = db.session.get(User, uid) if uid else None


def guard():
    """Send visitors to setup or login unless the endpoint is public."""
    if request.endpoint in PUBLIC:
        return None
    if g.user is not None:
        return None
    target = url_for("auth.setup") if not has_admin() else url_for("auth.login", next=request.path)
    if request.htmx:
        return "", 204, {"HX-Redirect": target}
    return redirect(target)


def api_guard():
    """Authenticate an API call by bearer token, or by session plus CSRF token."""
    header = request.headers.get("Authorization")
    if header:
        g.user = token_user(header)
        if g.user is None:
            return jsonify(error="unauthorized", message="Invalid or revoked API token"), 401
        return None
    if g.get("user") is None:
        return jsonify(error="unauthorized",
                       message="Send 'Authorization: Bearer <token>' or log in"), 401
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        current_app.extensions["csrf"].protect()
    return None


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    if has_admin():
        return redirect(url_for("auth.login"))
    errors, values = {}, {}
    if request.method == "POST":
        values = {"username": request.form.get("username", "")}
        if request.form.get("password") != request.form.get("confirm"):
            errors["confirm"] = "The two passwords do not match"
        else:
            try:
                user = create_admin(request.form.get("username", ""),
                                    request.form.get("password", ""))
            except Invalid as exc:
                errors = exc.messages()
            else:
                _start_session(user)
                audit.record("create", "administrator", user.id, user.username,
                             after={"username": user.username})
                flash("Administrator created. Welcome.", "success")
                return redirect(url_for("home.index"))
    return render("auth/setup.html", errors=errors, values=values)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if not has_admin():
        return redirect(url_for("auth.setup"))
    error, username = None, ""
    if request.method == "POST":
        username = request.form.get("username", "").strip()[:64]
        address = request.remote_addr or "?"
        wait = _locked_for(username, address)
        user = db.session.scalar(select(User).where(User.username == username))
        if wait:
            error = f"Too many failed logins. Try again in {ceil_minutes(wait)}."
        elif user and check_password_hash(user.password_hash, request.form.get("password", "")):
            db.session.execute(delete(LoginFailure).where(LoginFailure.username == username))
            db.session.commit()
            _start_session(user)
            nxt = request.args.get("next", "")
            return redirect(nxt if nxt.startswith("/") and not nxt.startswith("//")
                            else url_for("home.index"))
        else:
            db.session.add(LoginFailure(username=username, address=address))
            db.session.commit()
            time.sleep(current_app.config["LOGIN_FAIL_DELAY"])
            error = "Wrong username or password."
        return render("auth/login.html", error=error, username=username), 401 if not wait else 429
    return render("auth/login.html", error=error, username=username)


def ceil_minutes(seconds: int) -> str:
    m = -(-seconds // 60)
    return f"{m} minute{'s' if m != 1 else ''}"


@bp.route("/logout", methods=["POST"])
def logout():
    session.clear()
    return redirect(url_for("auth.login"))


def _start_session(user: User) -> None:
    session.clear()  # no session fixation
    session["uid"] = user.id
    session.permanent = True
    g.user = user


def prune_failures() -> None:
    """Forget failed logins older than the lock window."""
    since = utcnow() - timedelta(seconds=current_app.config["LOGIN_LOCK_SECONDS"])
    db.session.execute(delete(LoginFailure).where(LoginFailure.at < since))
    db.session.commit()
