"""Administrators, server-side sessions, login lock-out and the login pages."""

import math
import secrets
import time
from datetime import datetime, timedelta
from functools import cache

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from werkzeug.security import check_password_hash, generate_password_hash

from appliance import audit
from appliance.api_tokens import TOUCH, digest, token_user
from appliance.api_tokens import new_token as new_token  # imported from here too
from appliance.db import db, utcnow
from appliance.models import AdminSession, LoginCounter, LoginFailure, User
from appliance.ui import on_invalid, render
from appliance.validation import Field, Invalid, Schema, length, only

bp = Blueprint("auth", __name__)

# Endpoints reachable without a session.
PUBLIC = {"auth.login", "auth.setup", "static", "health",
          "client.link_password"}  # a user with a one-time link sets an XMPP password

ADMIN = Schema(
    "Administrator",
    Field("username", "Username", (length(1, 64), only(r"[A-Za-z0-9._@-]",
          "letters, digits, dots, dashes, underscores and @"))),
    Field("password", "Password", (length(10, 256),), secret=True,
          help="At least 10 characters."),
)
#: The other fields of the setup and password forms (checked here, not by a schema).
CONFIRM = Field("confirm", "Confirm password", secret=True)
CURRENT = Field("current", "Current password", secret=True)


class Sessions(SecureCookieSessionInterface):
    """Mark the session cookie Secure whenever the request came over TLS."""

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)


# The administrator behind the current request, or "" (the audit log owns the answer).
username = audit.current_username


def has_admin() -> bool:
    return db.session.scalar(select(func.count()).select_from(User)) > 0


def create_admin(username: str, password: str) -> User:
    """Validate and store a new administrator; raise Invalid on a bad name or password."""
    data = ADMIN.validate({"username": username, "password": password})
    if db.session.scalar(select(User).where(User.username == data["username"])):
        raise Invalid({"username": ("unique", "Username is already in use")})
    user = User(username=data["username"], password_hash=_hash(password))
    db.session.add(user)
    db.session.commit()
    return user


def set_password(user: User, password: str, keep: AdminSession | None = None) -> int:
    """Validate and store a new password, end the user's sessions except `keep` and forget
    its failed logins; return how many sessions ended."""
    ADMIN.fields["password"].clean(password)
    user.password_hash = _hash(password)
    ended = delete(AdminSession).where(AdminSession.user_id == user.id)
    if keep is not None:
        ended = ended.where(AdminSession.id != keep.id)
    n = db.session.execute(ended).rowcount
    db.session.execute(delete(LoginCounter).where(LoginCounter.key == _user_key(user.username)))
    db.session.commit()
    return n


# --- login attempts ------------------------------------------------------------------------

def _user_key(name: str) -> str:
    return f"user:{name}"


def _claim(key: str, window: timedelta) -> tuple[int, datetime]:
    """Count one attempt for `key` in a single atomic statement; return (attempts in the
    window, window start). A window older than `window` starts again at this attempt."""
    now = utcnow()
    stale = LoginCounter.window_start <= now - window
    dialect = db.session.get_bind().dialect.name
    insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect]
    stmt = insert(LoginCounter).values(key=key, attempts=1, window_start=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[LoginCounter.key],
        set_={"attempts": case((stale, 1), else_=LoginCounter.attempts + 1),
              "window_start": case((stale, now), else_=LoginCounter.window_start)},
    ).returning(LoginCounter.attempts, LoginCounter.window_start)
    attempts, start = db.session.execute(stmt).one()
    db.session.commit()
    return attempts, start


def attempt(username: str, address: str, password: str,
            password_hash: str | None) -> tuple[bool, int]:
    """Check a password under the lock-out rules; return (right, seconds locked).

    The attempt is counted for the username and the address before the password is
    checked, so of any number of concurrent attempts only LOGIN_MAX_FAILURES are ever
    checked. An unknown user (no `password_hash`) costs the same as a wrong password.
    """
    cfg = current_app.config
    window = timedelta(seconds=cfg["LOGIN_LOCK_SECONDS"])
    limit = cfg["LOGIN_MAX_FAILURES"]
    db.session.commit()  # each count is a transaction of its own
    wait = 0
    for key, n in ((_user_key(username), limit), (f"addr:{address}", limit * 4)):
        attempts, start = _claim(key, window)
        if attempts > n:
            left = (start + window - utcnow()).total_seconds()
            wait = max(wait, 1, math.ceil(left))
    if wait:
        return False, wait
    right = check_password_hash(password_hash or _dummy_hash(cfg["PASSWORD_HASH"]), password)
    if right and password_hash:
        # A right password forgets the username's failures and takes back its address count.
        db.session.execute(delete(LoginCounter).where(LoginCounter.key == _user_key(username)))
        db.session.execute(update(LoginCounter).where(
            LoginCounter.key == f"addr:{address}", LoginCounter.attempts > 0
        ).values(attempts=LoginCounter.attempts - 1))
        db.session.commit()
        return True, 0
    db.session.add(LoginFailure(username=username, address=address))
    db.session.commit()
    return False, 0


def throttle(keys: list[tuple[str, int]]) -> int:
    """Count one attempt for each (key, limit) in the lock-out window (LOGIN_LOCK_SECONDS);
    return the seconds to wait when any key is over its limit, else 0. Another kind of
    sign-in (the XMPP service's) shares the rules of the login page."""
    window = timedelta(seconds=current_app.config["LOGIN_LOCK_SECONDS"])
    db.session.commit()  # each count is a transaction of its own
    wait = 0
    for key, limit in keys:
        attempts, start = _claim(key, window)
        if attempts > limit:
            wait = max(wait, 1, math.ceil((start + window - utcnow()).total_seconds()))
    return wait


def forgive(key: str) -> None:
    """A right password: forget `key`'s attempts."""
    db.session.execute(delete(LoginCounter).where(LoginCounter.key == key))
    db.session.commit()


def _hash(password: str) -> str:
    """Hash a new password with the PASSWORD_HASH method."""
    return generate_password_hash(password, current_app.config["PASSWORD_HASH"])


@cache
def _dummy_hash(method: str) -> str:
    """A hash made like real ones, checked for unknown users so they take as long."""
    return generate_password_hash(secrets.token_urlsafe(16), method)


# --- sessions ------------------------------------------------------------------------------

def load_user() -> None:
    """Set g.user from the session cookie's server-side session, ending one that is over."""
    g.user = g.admin_session = None
    sid = session.get("sid")
    if not isinstance(sid, str) or not sid:
        return
    row = db.session.scalar(select(AdminSession).where(AdminSession.digest == digest(sid)))
    now = utcnow()
    if row is None or _session_over(row, now):
        if row is not None:
            db.session.delete(row)
            db.session.commit()
        session.pop("sid", None)
        return
    if now - row.last_seen_at >= TOUCH:
        row.last_seen_at = now
        db.session.commit()
    g.user, g.admin_session = row.user, row


def _session_over(row: AdminSession, now: datetime) -> bool:
    cfg = current_app.config
    return (now - row.last_seen_at > timedelta(minutes=cfg["SESSION_IDLE_MINUTES"])
            or now - row.created_at > timedelta(hours=cfg["SESSION_MAX_HOURS"]))


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


def _form(template: str, errors: dict, values: dict | None = None) -> str:
    return render(template, errors=errors, values=values or {}, admin=ADMIN, confirm=CONFIRM,
                  current=CURRENT)


def _same_password(form) -> None:
    if form.get("password") != form.get("confirm"):
        raise Invalid({"confirm": ("match", "The two passwords do not match")})


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    if has_admin():
        return redirect(url_for("auth.login"))
    if request.method == "GET":
        return _form("auth/setup.html", {})
    values = {"username": request.form.get("username", "")}
    on_invalid(lambda errors: _form("auth/setup.html", errors, values))
    _same_password(request.form)
    user = create_admin(values["username"], request.form.get("password", ""))
    _start_session(user)
    audit.record("create", "administrator", user.id, user.username,
                 after={"username": user.username})
    flash("Administrator created. Welcome.", "success")
    return redirect(url_for("home.index"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    if not has_admin():
        return redirect(url_for("auth.setup"))
    error, username = None, ""
    if request.method == "POST":
        username = request.form.get("username", "").strip()[:64]
        user = db.session.scalar(select(User).where(User.username == username))
        right, wait = attempt(username, request.remote_addr or "?",
                              request.form.get("password", ""), user and user.password_hash)
        if wait:
            error = f"Too many failed logins. Try again in {ceil_minutes(wait)}."
        elif right:
            _start_session(user)
            nxt = request.args.get("next", "")
            return redirect(nxt if nxt.startswith("/") and not nxt.startswith("//")
                            else url_for("home.index"))
        else:
            time.sleep(current_app.config["LOGIN_FAIL_DELAY"])
            error = "Wrong username or password."
        return render("auth/login.html", error=error, username=username), 401 if not wait else 429
    return render("auth/login.html", error=error, username=username)


def ceil_minutes(seconds: int) -> str:
    m = -(-seconds // 60)
    return f"{m} minute{'s' if m != 1 else ''}"


@bp.route("/logout", methods=["POST"])
def logout():
    if g.get("admin_session") is not None:
        db.session.delete(g.admin_session)  # a copy of the cookie dies with it
        db.session.commit()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
def password():
    """Change the administrator's own password; their other sessions end."""
    if request.method == "GET":
        return _form("auth/password.html", {})
    on_invalid(lambda errors: _form("auth/password.html", errors))
    form, user = request.form, g.user
    right, wait = attempt(user.username, request.remote_addr or "?",
                          form.get("current", ""), user.password_hash)
    if wait:
        raise Invalid({"current": ("locked", "Too many failed attempts. Try again in "
                                   f"{ceil_minutes(wait)}.")})
    if not right:
        time.sleep(current_app.config["LOGIN_FAIL_DELAY"])
        raise Invalid({"current": ("wrong", "The current password is wrong")})
    _same_password(form)
    ended = set_password(user, form.get("password", ""), keep=g.admin_session)
    audit.record("update", "administrator", user.id, user.username,
                 after={"password": "changed", "other_sessions_ended": ended})
    flash("Password changed." + (f" {ended} other session(s) logged out." if ended else ""),
          "success")
    return redirect(url_for("home.index"))


def _start_session(user: User) -> None:
    sid = secrets.token_urlsafe(32)
    row = AdminSession(user_id=user.id, digest=digest(sid))
    db.session.add(row)
    db.session.commit()
    session.clear()  # no session fixation
    session["sid"] = sid
    session.permanent = True
    g.user, g.admin_session = user, row


def prune_failures() -> None:
    """Forget failed logins and counts older than the lock window, and ended sessions."""
    cfg = current_app.config
    now = utcnow()
    since = now - timedelta(seconds=cfg["LOGIN_LOCK_SECONDS"])
    db.session.execute(delete(LoginFailure).where(LoginFailure.at < since))
    db.session.execute(delete(LoginCounter).where(LoginCounter.window_start < since))
    db.session.execute(delete(AdminSession).where(
        (AdminSession.last_seen_at < now - timedelta(minutes=cfg["SESSION_IDLE_MINUTES"]))
        | (AdminSession.created_at < now - timedelta(hours=cfg["SESSION_MAX_HOURS"]))))
    db.session.commit()
