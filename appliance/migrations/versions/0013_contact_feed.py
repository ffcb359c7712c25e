"""what a peer is served changes: a revision per contact, tombstones of deleted ones

contact.rev is set by triggers whenever what a peer sees of a contact changes: its served
columns, the account it is reached through (login, enabled), the enterprise's IM domain.
A deleted contact leaves a row in contact_tombstone. Contacts imported from peers
(source peering:...) are never served, so their writes are left alone.
SQLite: writers take turns, so the revision is a counter, contact_feed.rev + 1, which a
reader moves on (appliance/peer_feed.py). PostgreSQL: the writing transaction's id
(pg_current_xact_id), read against a snapshot's xmin, so that a transaction committing late
is never skipped.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 18:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

SERVED = ('enterprise_id', 'source', 'external_id', 'first_name', 'last_name', 'email',
          'phone', 'im_address')
KEY = ('enterprise_id', 'source', 'external_id')
ACCOUNT = ('enterprise_id', 'source', 'external_id', 'login', 'enabled')


def _changed(cols, same: str) -> str:
    return " OR ".join(f"old.{c} {same} new.{c}" for c in cols)


def _sqlite():
    rev = "(SELECT rev FROM contact_feed WHERE id = 1) + 1"
    own = "substr({}.source, 1, 8) != 'peering:'"

    def touch(row):
        return (f"UPDATE contact SET rev = {rev} WHERE enterprise_id = {row}.enterprise_id "
                f"AND source = {row}.source AND external_id = {row}.external_id;")

    tomb = ("INSERT INTO contact_tombstone (enterprise_id, key, rev, at) VALUES "
            f"(old.enterprise_id, old.source || '/' || old.external_id, {rev}, "
            "datetime('now'));")
    cols = ", ".join(SERVED)
    op.execute(f"CREATE TRIGGER contact_feed_insert AFTER INSERT ON contact "
               f"WHEN {own.format('new')} BEGIN "
               f"UPDATE contact SET rev = {rev} WHERE id = new.id; END")
    op.execute(f"CREATE TRIGGER contact_feed_update AFTER UPDATE OF {cols} ON contact "
               f"WHEN {own.format('new')} AND ({_changed(SERVED, 'IS NOT')}) BEGIN "
               f"UPDATE contact SET rev = {rev} WHERE id = new.id; END")
    op.execute(f"CREATE TRIGGER contact_feed_rekey AFTER UPDATE OF {', '.join(KEY)} "
               f"ON contact WHEN {own.format('old')} AND ({_changed(KEY, 'IS NOT')}) "
               f"BEGIN {tomb} END")
    op.execute(f"CREATE TRIGGER contact_feed_delete AFTER DELETE ON contact "
               f"WHEN {own.format('old')} BEGIN {tomb} END")
    op.execute(f"CREATE TRIGGER account_feed_insert AFTER INSERT ON account BEGIN "
               f"{touch('new')} END")
    op.execute(f"CREATE TRIGGER account_feed_update AFTER UPDATE OF {', '.join(ACCOUNT)} "
               f"ON account WHEN {_changed(ACCOUNT, 'IS NOT')} BEGIN "
               f"{touch('old')} {touch('new')} END")
    op.execute(f"CREATE TRIGGER account_feed_delete AFTER DELETE ON account BEGIN "
               f"{touch('old')} END")
    op.execute(f"CREATE TRIGGER enterprise_feed_domain AFTER UPDATE OF im_domain ON enterprise "
               f"WHEN old.im_domain IS NOT new.im_domain BEGIN UPDATE contact SET rev = {rev} "
               f"WHERE enterprise_id = new.id AND {own.format('contact')}; END")


_XID = "pg_current_xact_id()::text::bigint"


def _postgresql():
    own = "left({}.source, 8) <> 'peering:'"

    def touch(row):
        return (f"UPDATE contact SET rev = {_XID} WHERE enterprise_id = {row}.enterprise_id "
                f"AND source = {row}.source AND external_id = {row}.external_id;")

    def function(name, body):
        op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   f"BEGIN {body} END $$")

    function("contact_feed_rev", f"NEW.rev := {_XID}; RETURN NEW;")
    function("contact_feed_gone",
             "INSERT INTO contact_tombstone (enterprise_id, key, rev, at) "
             f"SELECT enterprise_id, source || '/' || external_id, {_XID}, "
             f"now() AT TIME ZONE 'UTC' FROM gone WHERE {own.format('gone')}; RETURN NULL;")
    function("contact_feed_rekey",
             "INSERT INTO contact_tombstone (enterprise_id, key, rev, at) VALUES "
             f"(OLD.enterprise_id, OLD.source || '/' || OLD.external_id, {_XID}, "
             "now() AT TIME ZONE 'UTC'); RETURN NULL;")
    function("account_feed_touch",
             f"IF TG_OP <> 'INSERT' THEN {touch('OLD')} END IF; "
             f"IF TG_OP <> 'DELETE' THEN {touch('NEW')} END IF; RETURN NULL;")
    function("enterprise_feed_domain",
             f"UPDATE contact SET rev = {_XID} WHERE enterprise_id = NEW.id "
             f"AND {own.format('contact')}; RETURN NULL;")
    cols = ", ".join(SERVED)
    op.execute(f"CREATE TRIGGER contact_feed_insert BEFORE INSERT ON contact FOR EACH ROW "
               f"WHEN ({own.format('NEW')}) EXECUTE FUNCTION contact_feed_rev()")
    op.execute(f"CREATE TRIGGER contact_feed_update BEFORE UPDATE OF {cols} ON contact "
               f"FOR EACH ROW WHEN ({own.format('NEW')} AND "
               f"({_changed(SERVED, 'IS DISTINCT FROM')})) EXECUTE FUNCTION contact_feed_rev()")
    op.execute(f"CREATE TRIGGER contact_feed_rekey AFTER UPDATE OF {', '.join(KEY)} ON contact "
               f"FOR EACH ROW WHEN ({own.format('OLD')} AND "
               f"({_changed(KEY, 'IS DISTINCT FROM')})) EXECUTE FUNCTION contact_feed_rekey()")
    # One statement's deletions at once (a sync removes thousands in one statement).
    op.execute("CREATE TRIGGER contact_feed_delete AFTER DELETE ON contact "
               "REFERENCING OLD TABLE AS gone FOR EACH STATEMENT "
               "EXECUTE FUNCTION contact_feed_gone()")
    op.execute("CREATE TRIGGER account_feed_insert AFTER INSERT OR DELETE ON account "
               "FOR EACH ROW EXECUTE FUNCTION account_feed_touch()")
    op.execute(f"CREATE TRIGGER account_feed_update AFTER UPDATE OF {', '.join(ACCOUNT)} "
               f"ON account FOR EACH ROW WHEN ({_changed(ACCOUNT, 'IS DISTINCT FROM')}) "
               "EXECUTE FUNCTION account_feed_touch()")
    op.execute("CREATE TRIGGER enterprise_feed_domain AFTER UPDATE OF im_domain ON enterprise "
               "FOR EACH ROW WHEN (OLD.im_domain IS DISTINCT FROM NEW.im_domain) "
               "EXECUTE FUNCTION enterprise_feed_domain()")


TRIGGERS = (('contact', 'contact_feed_insert'), ('contact', 'contact_feed_update'),
            ('contact', 'contact_feed_rekey'), ('contact', 'contact_feed_delete'),
            ('account', 'account_feed_insert'), ('account', 'account_feed_update'),
            ('account', 'account_feed_delete'), ('enterprise', 'enterprise_feed_domain'))
FUNCTIONS = ('contact_feed_rev', 'contact_feed_gone', 'contact_feed_rekey',
             'account_feed_touch', 'enterprise_feed_domain')


def upgrade():
    # Not in batch mode: SQLite adds (and drops) a column in place, keeping the table's
    # other triggers (the search index's, migration 0012).
    op.add_column('contact', sa.Column('rev', sa.BigInteger(), nullable=False,
                                       server_default='0'))
    op.create_index('ix_contact_ent_rev', 'contact', ['enterprise_id', 'rev'], unique=False)
    op.create_table(
        'contact_tombstone',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('enterprise_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=320), nullable=False),
        sa.Column('rev', sa.BigInteger(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_tombstone')))
    op.create_index('ix_contact_tombstone_ent_rev', 'contact_tombstone',
                    ['enterprise_id', 'rev'], unique=False)
    op.create_index(op.f('ix_contact_tombstone_at'), 'contact_tombstone', ['at'], unique=False)
    feed = op.create_table(
        'contact_feed',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('rev', sa.BigInteger(), nullable=False),
        sa.Column('pruned_below', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_feed')))
    op.bulk_insert(feed, [{'id': 1, 'rev': 0, 'pruned_below': 0}])
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        _sqlite()
    elif dialect == 'postgresql':
        _postgresql()


def downgrade():
    dialect = op.get_bind().dialect.name
    for table, trigger in TRIGGERS:
        if dialect == 'sqlite':
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        elif dialect == 'postgresql':
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
    if dialect == 'postgresql':
        for name in FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_table('contact_feed')
    op.drop_index(op.f('ix_contact_tombstone_at'), table_name='contact_tombstone')
    op.drop_index('ix_contact_tombstone_ent_rev', table_name='contact_tombstone')
    op.drop_table('contact_tombstone')
    op.drop_index('ix_contact_ent_rev', table_name='contact')
    op.drop_column('contact', 'rev')
