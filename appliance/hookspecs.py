"""Every hook the host calls. Each is documented in docs/plugins.md and exercised by a test."""

import pluggy

hookspec = pluggy.HookspecMarker("appliance")
hookimpl = pluggy.HookimplMarker("appliance")  # plugins import it from `appliance`


@hookspec
def appliance_metadata():
    """Return a dict describing the plugin: title, version, description, min_host_version,
    settings (a list of appliance.config.Setting). Called once per plugin, through pluggy,
    after every plugin is registered."""


@hookspec
def appliance_blueprints():
    """Return a list of Flask blueprints with the plugin's pages, templates and static files."""


@hookspec
def appliance_api_blueprints():
    """Return a list of appliance.api.ApiBlueprint mounted under /api/v1 and documented in
    the OpenAPI document."""


@hookspec
def appliance_nav_tabs():
    """Return a list of appliance.ui.Tab for the navigation bar."""


@hookspec
def appliance_dashboard_panels():
    """Return a list of appliance.ui.Panel shown on the home page, each loaded by HTMX from
    its URL."""


@hookspec
def appliance_home_summary():
    """Return a list of appliance.summary.Summary: the plugin's cards of the home page
    (figures, a small table, small charts), computed at each visit with a handful of
    queries."""


@hookspec
def appliance_job_targets(enterprise):
    """Return the job targets (appliance.jobs run targets) of the plugin's runs that belong
    to `enterprise`, for the Jobs page's and API's enterprise filter."""


@hookspec
def appliance_account_panels():
    """Return a list of appliance.ui.Panel shown on each account's page, each loaded by HTMX
    from its endpoint, which takes the account's id as `account_id`."""


@hookspec
def appliance_job_kinds():
    """Return a list of appliance.jobs.JobKind the plugin runs in the background."""


@hookspec
def appliance_cli_commands():
    """Return a list of click commands added under the `appliance` command."""


@hookspec
def appliance_migrations():
    """Return the path of the plugin's Alembic versions directory (its own branch, with its
    own version table), or None."""


@hookspec
def appliance_enterprise_deleted(enterprise):
    """Called inside the transaction that deletes `enterprise`, before the row goes: remove
    or detach the plugin's rows for it. Return nothing."""


@hookspec
def appliance_contacts_imported(enterprise, source, result):
    """Called after a source's contacts were replaced (appliance.directory.replace_source).
    `result` is an ImportResult with added/updated/removed keys. Return nothing."""


@hookspec
def appliance_accounts_imported(enterprise, source, result):
    """Called after a source's accounts were replaced or removed (appliance.directory), with
    its ImportResult (added/updated/removed). Return nothing."""


@hookspec
def appliance_accounts_removed(enterprise, source, logins):
    """Called after accounts were removed from `enterprise` (by a sync or a deleted
    source). `logins` is the list of removed logins. Return nothing."""


@hookspec
def appliance_pbx_connectors():
    """Return a list of PBX connectors: objects with a `name` and a
    `devices(node_settings)` method yielding appliance.plugins.sync.pbx_model.Device records (or
    Issue for a record that cannot be read; with note=True, a note on one that was read), as
    the sync plugin's built-in CSV connector does. A PBX node names the connector that reads
    it."""


@hookspec
def appliance_flow_connectors():
    """Return a list of Flow Through Provisioning connectors: objects with a `name` and a
    `deliver(element, changes)` method that sends a network element its queued user changes
    (dicts with action, login and payload) and raises when it could not."""


@hookspec(firstresult=True)
def appliance_account_password(account, password):
    """Check the XMPP sign-in password of `account` (an appliance.models.Account) if the
    plugin owns its source and the password lives elsewhere (a directory bound to): return
    "ok", "wrong" or "unavailable" (the directory cannot be reached: a temporary failure,
    never "wrong"). Return None for accounts that are not the plugin's; the host then checks
    the password the admin or user set. With password=None the host only asks whether the
    plugin checks this account: answer "directory" (without contacting it) or None. The
    first answer that is not None wins."""


@hookspec(firstresult=True)
def appliance_xmpp_policy():
    """Return the server-to-server policy of the embedded XMPP service: a dict with
    "enabled" (bool), "domains" (remote domains allowed to federate) and "routes"
    ({domain: (host, port)} for domains not in DNS), or None. The first answer wins;
    without one the service talks to no other server."""
