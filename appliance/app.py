"""The app factory: settings, database, plugins, routes, security."""

import json
from datetime import UTC, timedelta
from itertools import chain

from flask import Flask, flash, g, jsonify, render_template, request, session
from flask_wtf.csrf import CSRFError, CSRFProtect
from htmx_flask import Htmx
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, NotFound, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from appliance import api, assets, auth, health, leftout, limits, peers
from appliance.config import (
    database_url,
    from_env,
    prepare_data_dir,
    prepare_import_dir,
    secret_key,
    timezone,
)
from appliance.db import db
from appliance.host import Host
from appliance.jobs import Jobs
from appliance.models import Enterprise
from appliance.plugins import Plugins
from appliance.validation import MAX_ID, Conflict, Invalid


class IdConverter(IntegerConverter):
    """`<int:x>` up to what a database stores: a larger number is not found (404)."""

    def to_python(self, value: str) -> int:
        number = super().to_python(value)
        if number > MAX_ID:
            # Not a ValidationError: Werkzeug would then answer 405 when another method's
            # rule has the same path.
            raise NotFound()
        return number


def create_app(config: dict | None = None) -> Flask:
    """Build an appliance app from APPLIANCE_* variables overridden by `config`."""
    cfg = from_env()
    cfg.update(config or {})
    data_dir = prepare_data_dir(cfg["DATA_DIR"])
    cfg["DATA_DIR"] = str(data_dir)
    cfg["IMPORT_DIR"] = str(prepare_import_dir(cfg))

    app = Flask("appliance", instance_path=str(data_dir))
    app.url_map.converters["int"] = IdConverter
    app.config.update(cfg)
    app.config.update(
        SECRET_KEY=cfg.get("SECRET_KEY") or secret_key(data_dir),
        SQLALCHEMY_DATABASE_URI=database_url(cfg),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(cfg["BEHIND_TLS"]),
        SESSION_COOKIE_NAME="appliance_session",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=cfg["SESSION_MAX_HOURS"]),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        JSON_SORT_KEYS=False,
    )
    app.session_interface = auth.Sessions()
    if cfg.get("TRUSTED_PROXIES"):
        hops = int(cfg["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    engine = app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # How long a write waits for another writer before the request answers 503.
        engine.setdefault("connect_args", {"timeout": float(cfg["DB_BUSY_SECONDS"])})
    else:
        # A pooled connection the server dropped (a restart, a failover, an idle cut) is
        # found out and replaced before a request uses it, not by the request failing.
        engine.setdefault("pool_pre_ping", True)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # The same for a row or table another transaction holds (0 would be: for ever).
        # Every statement planned for its values: psycopg prepares a statement run 5 times,
        # and PostgreSQL may then plan it once for any values, which for a search is the
        # wrong plan for most (a small enterprise's search read the whole trigram index:
        # 71 ms instead of 1 ms, at a million contacts).
        wait = max(1, round(float(cfg["DB_BUSY_SECONDS"]) * 1000))
        engine.setdefault("connect_args", {
            "options": f"-c lock_timeout={wait} -c plan_cache_mode=force_custom_plan"})
    db.init_app(app)
    Htmx(app)
    limits.wire(app)
    csrf = CSRFProtect(app)

    plugins = Plugins(cfg.get("PROFILE") or "standard", cfg.get("DISABLE_PLUGINS") or "",
                      cfg.get("EXTRA_PLUGINS") or (), trace=bool(cfg.get("TRACE_HOOKS")))
    app.config.update(plugins.configure(cfg))
    host = Host(plugins)
    app.extensions["appliance"] = host

    app.register_blueprint(auth.bp)
    for bps in plugins.hook.appliance_blueprints():
        for bp in bps:
            app.register_blueprint(bp)
    host.api_blueprints = [api.host_api, *chain.from_iterable(
        plugins.hook.appliance_api_blueprints())]
    for bp in host.api_blueprints:
        app.register_blueprint(bp)
        csrf.exempt(bp)
    for bp in app.blueprints.values():
        if getattr(bp, "authenticate", None) is not None:  # callers with their own credential
            csrf.exempt(bp)
    host.tabs = sorted(chain.from_iterable(plugins.hook.appliance_nav_tabs()),
                       key=lambda t: (t.order, t.label))
    host.panels = sorted(chain.from_iterable(plugins.hook.appliance_dashboard_panels()),
                         key=lambda p: (p.order, p.title))
    host.account_panels = sorted(chain.from_iterable(plugins.hook.appliance_account_panels()),
                                 key=lambda p: (p.order, p.title))
    host.jobs = Jobs(app, list(chain.from_iterable(plugins.hook.appliance_job_kinds())))
    for cmds in plugins.hook.appliance_cli_commands():
        for cmd in cmds:
            app.cli.add_command(cmd)

    app.jinja_env.filters["fromjson"] = json.loads
    app.jinja_env.globals["peer_key_of"] = peers.key_info
    tz = timezone(cfg)
    app.config["TZINFO"] = tz
    app.jinja_env.filters["local"] = lambda dt, fmt="%Y-%m-%d %H:%M %Z": (
        dt.replace(tzinfo=UTC).astimezone(tz).strftime(fmt) if dt else "")
    # The shared macros are globals, so a block rendered alone (an HTMX partial) has them too.
    macros = app.jinja_env.get_template("macros.html").module
    app.jinja_env.globals.update({n: getattr(macros, n) for n in dir(macros)
                                  if not n.startswith("_")})
    _wire_requests(app)
    _wire_errors(app)
    assets.wire(app)

    app.add_url_rule("/healthz", "health", health.view)
    return app


def _wire_requests(app: Flask) -> None:
    @app.before_request
    def before():
        if request.endpoint == "static":  # public files: no session or database work
            return None
        _no_nul()
        if request.path.startswith(peers.PREFIX + "/"):  # other appliances, by peer key
            return peers.guard() if request.endpoint else None
        own = getattr(app.blueprints.get(request.blueprint or ""), "authenticate", None)
        if own is not None:  # a blueprint for callers that are not administrators
            return own()
        if request.path.startswith(api.PREFIX + "/"):
            auth.load_user()
            return auth.api_guard()
        auth.load_user()
        stop = auth.guard()
        if stop is not None:
            return stop
        if g.user is not None:
            _select_enterprise()
        return None

    @app.after_request
    def headers(resp):
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("Content-Security-Policy",
                                "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                "frame-ancestors 'none'")
        if g.get("user") is not None and resp.mimetype == "text/html":
            resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.context_processor
    def chrome():
        host = app.extensions["appliance"]
        if g.get("user") is None:
            return {"host": host}
        enterprises = db.session.execute(
            select(Enterprise.id, Enterprise.eid, Enterprise.name).order_by(Enterprise.name)).all()
        return {"host": host, "tabs": host.tabs, "enterprises": enterprises,
                "enterprise": g.get("enterprise")}

    @app.teardown_appcontext
    def _done(_exc):
        db.session.remove()


def _no_nul() -> None:
    """A NUL character is refused wherever a request has it for: no stored text holds one
    (validation.no_nul) and PostgreSQL refuses it in a query. A query argument answers 422
    naming it; a path names nothing there is (404)."""
    if any(isinstance(v, str) and "\x00" in v for v in (request.view_args or {}).values()):
        raise NotFound()
    for key, value in request.args.items(multi=True):
        if "\x00" in key or "\x00" in value:
            name = key.replace("\x00", "\\x00")
            raise Invalid({name: ("no_nul", f"{name} cannot contain the NUL character (U+0000)")})


def _select_enterprise() -> None:
    """Set g.enterprise from the session, falling back to the first one by name."""
    eid = session.get("enterprise_id")
    ent = db.session.get(Enterprise, eid) if eid else None
    if ent is None:
        ent = db.session.scalar(select(Enterprise).order_by(Enterprise.name).limit(1))
        if ent is not None:
            session["enterprise_id"] = ent.id
    g.enterprise = ent


def _wire_errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        msg = ("The security token of this form is missing or out of date. "
               "Reload the page and try again.")
        if request.path.startswith("/api/"):
            return api.error(400, "csrf", msg)
        return render_template("error.html", code=400, message=msg), 400

    @app.errorhandler(HTTPException)
    def http_error(exc):
        msg = limits.message(exc) if isinstance(exc, RequestEntityTooLarge) else exc.description
        # What the exception says besides its page: Allow on a 405, Retry-After, ...
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        plugins = app.extensions["appliance"].plugins
        gone = exc.code == 404 and leftout.left_out(request.path, plugins)
        if gone and request.path.startswith("/api/"):
            return jsonify(error="not_found", **gone), 404
        if gone:
            return render_template("error.html", code=404, message=gone["message"],
                                   heading="Not offered on this appliance"), 404
        if request.path.startswith("/api/"):
            resp = api.error(exc.code or 500, exc.name.lower().replace(" ", "_"), msg or exc.name)
            return resp[0], resp[1], headers
        return render_template("error.html", code=exc.code, message=msg), exc.code, headers

    @app.errorhandler(Invalid)
    def invalid(exc):
        """A broken rule, wherever raised: nothing of the request is kept. The API answers
        422 naming field and rule, 409 for a Conflict. A page that registered
        ui.on_invalid shows its form again with the messages (422); for a Conflict the
        message is flashed and its answer (a redirect back, say) kept. Otherwise: the
        error page."""
        db.session.rollback()
        conflict = isinstance(exc, Conflict)
        if request.path.startswith("/api/"):
            return api.error(409, exc.rule(), str(exc)) if conflict else api.invalid(exc)
        status = 409 if conflict else 422
        if render := g.get("on_invalid"):
            if conflict:
                flash(str(exc), "error")
                return render(exc.messages())
            out = render(exc.messages())
            return (out[0], status, *out[2:]) if isinstance(out, tuple) else (out, status)
        return render_template("error.html", code=status, message=str(exc)), status

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(PoolTimeout)
    def database_error(exc):
        db.session.rollback()
        busy, msg = health.describe(exc)
        headers = {"Retry-After": str(health.RETRY_AFTER)}
        if request.path.startswith("/api/"):
            resp = api.error(503, "database_busy" if busy else "database_unavailable", msg)
            return resp[0], 503, headers
        return render_template("error.html", code=503, message=msg), 503, headers

    @app.errorhandler(DBAPIError)
    def lost_connection(exc):
        """A connection lost under any other database error (the server went away
        mid-statement) is unavailable too, 503; any other such error is a bug (500)."""
        if not exc.connection_invalidated:
            raise exc
        return database_error(exc)
