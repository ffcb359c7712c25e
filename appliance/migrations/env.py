"""Alembic environment shared by the host and every plugin branch (see appliance.migrate)."""

from alembic import context

from appliance.db import db
from appliance.search import schema_object

config = context.config
owner = config.attributes["owner"]
plugins = config.attributes["plugin_names"]


def owns(table: str) -> bool:
    """A plugin owns the tables named after it; the host owns the rest."""
    if owner != "core":
        return table.startswith(f"{owner}_")
    return not any(table.startswith(f"{p}_") for p in plugins)


def include_name(name, type_, parent_names):
    # The search indexes (FTS5 tables, GIN indexes) are the migrations' own, not the models'.
    if type_ in ("table", "index") and schema_object(name):
        return False
    if type_ == "table":
        return not name.startswith("alembic_version") and owns(name)
    return True


def include_object(obj, name, type_, reflected, compare_to):
    """Compare only the owner's tables of the models too (not only of the database)."""
    if type_ == "table":
        return owns(name)
    table = getattr(obj, "table", None)
    return owns(table.name) if table is not None else True


context.configure(
    connection=config.attributes["connection"],
    target_metadata=db.metadata,
    version_table=config.attributes["version_table"],
    include_name=include_name,
    include_object=include_object,
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
