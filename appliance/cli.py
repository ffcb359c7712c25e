"""The `appliance` command."""

import json
import os
import signal
import sys

import click
from flask import current_app
from flask.cli import FlaskGroup
from sqlalchemy import select

from appliance import api_tokens, auth, backup, limits, migrate
from appliance.config import ROLES, SettingError
from appliance.db import db
from appliance.host import host
from appliance.models import ApiToken, User
from appliance.plugins import PluginError
from appliance.validation import Invalid
from appliance.xmpp import service as xmpp


def _profile(ctx, _param, value):
    if value:
        os.environ["APPLIANCE_PROFILE"] = value


def _create(*_args):
    from appliance import create_app

    os.umask(0o077)  # what the appliance writes (database, keys, uploads) is its user's only
    try:
        return create_app()
    except (PluginError, SettingError) as exc:
        raise click.ClickException(str(exc)) from None


cli = FlaskGroup(
    name="appliance",
    help="Administration appliance for a unified-communications client service.",
    create_app=_create,
    add_default_commands=False,
    add_version_option=False,
    load_dotenv=False,
    set_debug_flag=False,
    params=[click.Option(["--profile"], help="Deployment profile (or APPLIANCE_PROFILE).",
                         callback=_profile, expose_value=False, is_eager=True)],
)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@click.option("--role", type=click.Choice(ROLES), default=None,
              help="web: pages and API (jobs are queued for a worker); worker: runs jobs and "
                   "schedules, serves only /healthz; all (default, or APPLIANCE_ROLE): both.")
def serve(host, port, threads, role):
    """Upgrade the database, then serve the appliance with waitress, and run the XMPP
    service (Prosody) as its child unless APPLIANCE_XMPP_SUPERVISE is off."""
    from waitress import create_server

    app = current_app._get_current_object()
    role = app.config["ROLE"] = role or app.config.get("ROLE") or "all"
    moved = migrate.upgrade(app)
    if moved:
        click.echo(f"Database upgraded: {', '.join(moved)}")
    jobs = app.extensions["appliance"].jobs
    interrupted = jobs.recover()
    if interrupted:
        click.echo(f"{interrupted} job run(s) of a stopped process marked interrupted")
    jobs.ensure_default_schedules()
    db.session.remove()
    if not (app.static_folder and os.path.exists(os.path.join(app.static_folder, "vendor",
                                                              "htmx.min.js"))):
        click.echo("warning: static/vendor/htmx.min.js is missing; run `make assets`", err=True)
    # Waitress refuses a body over the upload limit before the app reads a byte of it.
    server = create_server(_health_only(app) if role == "worker" else app, host=host,
                           port=port, threads=threads, ident="appliance",
                           max_request_body_size=limits.upload_bytes(app.config))
    if role != "web":
        jobs.start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwind: stop the XMPP service
    click.echo(f"Role: {role} (" + {
        "all": f"pages, and jobs as {jobs.owner.id}",
        "web": "pages; jobs are queued for a worker process",
        "worker": f"jobs as {jobs.owner.id}; only /healthz is served"}[role] + ")")
    click.echo(xmpp.supervise(app, host, server.effective_port) if role != "worker" else
               "XMPP service: not run by a worker process")
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"Appliance serving on http://{shown}:{server.effective_port}/", err=False)
    sys.stdout.flush()
    try:
        server.run()
    finally:
        if app.extensions["appliance"].xmpp is not None:
            app.extensions["appliance"].xmpp.stop()
        jobs.shutdown()


def _health_only(app):
    """A worker process's HTTP: /healthz, and 404 for everything else."""
    def wsgi(environ, start_response):
        if environ.get("PATH_INFO") == "/healthz":
            return app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"A worker process: it runs jobs and serves only /healthz\n"]
    return wsgi


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def plugins_cmd(as_json):
    """List every plugin: name, version, source, enabled, blocked by, settings, hooks."""
    plugins = host().plugins
    infos = plugins.listing()
    if as_json:
        click.echo(json.dumps([i.as_dict() for i in infos], indent=2))
        return
    click.echo(f"profile: {plugins.profile.name}")
    for i in infos:
        state = "enabled" if i.enabled else f"blocked ({i.blocked_by})"
        kind = "core" if i.core else i.source
        click.echo(f"{i.name:<20} {i.version:<9} {kind:<12} {state}")
        for s in i.settings:
            click.echo(f"{'':<20} setting {s['key']} = {s['value']!r} ({s['source']})")
        click.echo(f"{'':<20} hooks: {', '.join(i.hooks) or '-'}")


@cli.group("db")
def db_group():
    """Database schema migrations."""


@db_group.command("upgrade")
def db_upgrade():
    """Apply pending migrations of the host and every enabled plugin."""
    moved = migrate.upgrade(current_app._get_current_object())
    click.echo(f"Upgraded: {', '.join(moved)}" if moved else "Database is up to date.")


@db_group.command("status")
def db_status():
    """Show each migration branch's current and head revision."""
    states = migrate.status(current_app._get_current_object())
    for s in states:
        mark = "pending" if s["pending"] else "up to date"
        click.echo(f"{s['owner']:<20} current={','.join(s['current']) or '-'} "
                   f"head={','.join(s['heads']) or '-'} {mark}")
    if db.engine.url.get_backend_name() == "postgresql" and any(
            s["pending"] and s["current"] for s in states):
        click.echo(f"Before upgrading, back the database up: {backup.dump_hint(db.engine.url)}")


@cli.command("backup")
@click.option("--to", "to", type=click.Path(dir_okay=True, path_type=str), default=None,
              help="A file, or a directory to write into; default: <data dir>/backups.")
def backup_cmd(to):
    """Back the database up while the appliance runs: SQLite's online backup API, or
    pg_dump for PostgreSQL (its custom format, for pg_restore)."""
    try:
        path = backup.take(current_app._get_current_object(), to)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Backup written: {path}")


@db_group.command("revision")
@click.option("--plugin", "owner", default=migrate.CORE, show_default=True)
@click.option("-m", "--message", required=True)
@click.option("--empty", is_flag=True, help="Do not compare models with the database.")
def db_revision(owner, message, empty):
    """Write a new migration for the host or a plugin (developers)."""
    migrate.revision(current_app._get_current_object(), owner, message, autogenerate=not empty)


@cli.command("create-admin")
@click.option("--username", required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_admin(username, password_stdin):
    """Create an administrator."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    migrate.upgrade(current_app._get_current_object())
    try:
        user = auth.create_admin(username, password)
    except Invalid as exc:
        raise click.ClickException(str(exc)) from exc
    from appliance import audit

    audit.record("create", "administrator", user.id, user.username,
                 after={"username": user.username}, username="cli")
    click.echo(f"Administrator {user.username} created.")


def _admin(username: str) -> User:
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"No administrator named {username!r}")
    return user


@cli.command("set-password")
@click.option("--username", required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def set_password(username, password_stdin):
    """Set an administrator's password; all their login sessions end."""
    user = _admin(username)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:
        ended = auth.set_password(user, password)
    except Invalid as exc:
        raise click.ClickException(str(exc)) from exc
    from appliance import audit

    audit.record("update", "administrator", user.id, user.username,
                 after={"password": "changed", "sessions_ended": ended}, username="cli")
    click.echo(f"Password of {user.username} changed; {ended} session(s) ended.")


@cli.command("create-token")
@click.option("--username", required=True)
@click.option("--name", "--label", "name", default="", help="What the token is for.")
@click.option("--expires-days", type=click.IntRange(1, 3650), default=None,
              help="Days until the token expires; default: never.")
def create_token(username, name, expires_days):
    """Create an API token and print it once."""
    row, token = api_tokens.issue_token(_admin(username), name, expires_days)
    api_tokens.audit_token(row, username="cli")
    click.echo(token)


@cli.group("tokens")
def tokens_group():
    """API tokens: list and revoke (create-token makes one)."""


@tokens_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def tokens_list(as_json):
    """List every API token (never the token itself)."""
    items = [api_tokens.token_dict(t) for t in api_tokens.tokens()]
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    def when(iso):
        return (iso or "never")[:16].replace("T", " ")
    for t in items:
        state = " (expired)" if t["expired"] else ""
        click.echo(f"#{t['id']:<5} {t['name'] or '-':<24} {t['username']:<16} {t['hint']:<10} "
                   f"created {when(t['created_at'])}  last used {when(t['last_used_at'])}  "
                   f"expires {when(t['expires_at'])}{state}")


@tokens_group.command("revoke")
@click.argument("token_id", type=int)
def tokens_revoke(token_id):
    """Revoke an API token by its id: it is refused from now on."""
    row = db.session.get(ApiToken, token_id)
    if row is None:
        raise click.ClickException(f"No API token #{token_id}")
    api_tokens.revoke_token(row, username="cli")
    click.echo(f"API token #{token_id} ({row.label or 'no name'}) revoked.")
