"""Tables owned by the host and its core plugins."""

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint, text, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from appliance.db import db, utcnow
from appliance.search import SearchIndex


class User(db.Model):
    __tablename__ = "user"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(db.Model):
    """An API token; a revoked one is deleted."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the token
    label: Mapped[str] = mapped_column(String(64), default="")  # its name
    hint: Mapped[str] = mapped_column(String(16), default="", server_default="")  # first chars
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    user: Mapped[User] = relationship(lazy="joined")


class AdminSession(db.Model):
    """A logged-in browser: its cookie carries the session id, this row only the digest."""

    __tablename__ = "admin_session"
    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the session id
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user: Mapped[User] = relationship(lazy="joined")


class LoginFailure(db.Model):
    """A failed login, kept for the lock window as a record of who tried from where."""

    __tablename__ = "login_failure"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class LoginCounter(db.Model):
    """Login attempts of a username ("user:...") or an address ("addr:...") in its window.

    An attempt is counted, in one statement, before its password is checked, so
    concurrent attempts can never all slip under the limit.
    """

    __tablename__ = "login_counter"
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    attempts: Mapped[int] = mapped_column(default=0)
    window_start: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Enterprise(db.Model):
    __tablename__ = "enterprise"
    id: Mapped[int] = mapped_column(primary_key=True)
    eid: Mapped[str] = mapped_column(String(32), unique=True)  # the seed's "Enterprise ID"
    name: Mapped[str] = mapped_column(String(128))
    # The XMPP domain its accounts sign in to (a virtual host of the XMPP service).
    im_domain: Mapped[str | None] = mapped_column(String(253), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    trusted_servers: Mapped[list["TrustedServer"]] = relationship(
        back_populates="enterprise", cascade="all, delete-orphan", passive_deletes=True,
        order_by="TrustedServer.address",
    )


class TrustedServer(db.Model):
    __tablename__ = "trusted_server"
    __table_args__ = (UniqueConstraint("enterprise_id", "address"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(253))  # IP address or hostname
    description: Mapped[str] = mapped_column(String(64), default="")
    enterprise: Mapped[Enterprise] = relationship(back_populates="trusted_servers")


class PeerKey(db.Model):
    """The key a trusted server proves itself with on the peer link (only its digest)."""

    __tablename__ = "peer_key"
    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(253), unique=True)  # lower case
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the key
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Contact(db.Model):
    """A Corporate Directory entry, brought in by a source (a synchronizer, a peer, ...)."""

    __tablename__ = "contact"
    __table_args__ = (
        UniqueConstraint("enterprise_id", "source", "external_id"),
        # One index per sortable column of the Corporate Directory (100k contacts stay fast).
        Index("ix_contact_ent_last_first", "enterprise_id", "last_name", "first_name"),
        Index("ix_contact_ent_first_last", "enterprise_id", "first_name", "last_name"),
        Index("ix_contact_ent_email", "enterprise_id", "email"),
        Index("ix_contact_ent_phone", "enterprise_id", "phone"),
        Index("ix_contact_ent_source", "enterprise_id", "source_label"),
        Index("ix_contact_ent_federated", "enterprise_id", "federated"),
        # What changed since a peer's cursor (appliance.peer_feed; migration 0013).
        Index("ix_contact_ent_rev", "enterprise_id", "rev"),
        # The Corporate Directory's search (appliance.search; migration 0012 creates it).
        {"info": {"search": SearchIndex("contact", "enterprise_id",
                                        ("last_name", "first_name", "email", "phone"))}},
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(64))  # e.g. "sync:3", "peering:2"
    source_label: Mapped[str] = mapped_column(String(128), default="")
    external_id: Mapped[str] = mapped_column(String(255))  # stable key within the source
    first_name: Mapped[str] = mapped_column(String(128), default="")
    last_name: Mapped[str] = mapped_column(String(128), default="")
    email: Mapped[str] = mapped_column(String(255), default="")
    phone: Mapped[str] = mapped_column(String(64), default="")
    im_address: Mapped[str] = mapped_column(String(255), default="")
    federated: Mapped[bool] = mapped_column(default=False)
    department: Mapped[str] = mapped_column(String(128), default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Set by the database's triggers when what a peer is served changes (appliance.peer_feed).
    rev: Mapped[int] = mapped_column(BigInteger, server_default="0")


class ContactTombstone(db.Model):
    """A served contact that was deleted (written by a trigger), kept for the retention of
    appliance.peer_feed so that peers learn of removals without reading everything."""

    __tablename__ = "contact_tombstone"
    __table_args__ = (Index("ix_contact_tombstone_ent_rev", "enterprise_id", "rev"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int]  # no foreign key: the enterprise may be going with it
    key: Mapped[str] = mapped_column(String(320))  # "source/external_id", as peers see it
    rev: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(index=True)


class ContactFeed(db.Model):
    """One row: SQLite's change counter, and below which revision tombstones were pruned."""

    __tablename__ = "contact_feed"
    id: Mapped[int] = mapped_column(primary_key=True)
    rev: Mapped[int] = mapped_column(BigInteger, default=0)
    pruned_below: Mapped[int] = mapped_column(BigInteger, default=0)


class Account(db.Model):
    """A user account of an enterprise."""

    __tablename__ = "account"
    __table_args__ = (
        UniqueConstraint("enterprise_id", "login"),
        # A source's accounts are matched by their stable identifier on every sync.
        UniqueConstraint("enterprise_id", "source", "external_id", name="uq_account_source_key"),
        Index("ix_account_ent_last_first", "enterprise_id", "last_name", "first_name"),
        Index("ix_account_ent_first_last", "enterprise_id", "first_name", "last_name"),
        Index("ix_account_ent_email", "enterprise_id", "email"),
        Index("ix_account_ent_phone", "enterprise_id", "phone"),
        Index("ix_account_ent_source", "enterprise_id", "source"),
        Index("ix_account_ent_source_label", "enterprise_id", "source_label"),
        # The Accounts tab's search (appliance.search; migration 0012 creates it).
        {"info": {"search": SearchIndex("account", "enterprise_id",
                                        ("login", "last_name", "first_name", "email",
                                         "phone"))}},
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(64))
    source_label: Mapped[str] = mapped_column(String(128), default="")
    external_id: Mapped[str] = mapped_column(String(255))
    login: Mapped[str] = mapped_column(String(255))
    first_name: Mapped[str] = mapped_column(String(128), default="")
    last_name: Mapped[str] = mapped_column(String(128), default="")
    email: Mapped[str] = mapped_column(String(255), default="")
    phone: Mapped[str] = mapped_column(String(64), default="")
    department: Mapped[str] = mapped_column(String(128), default="", server_default="")
    feature_profile: Mapped[str] = mapped_column(String(64), default="", server_default="")
    enabled: Mapped[bool] = mapped_column(default=True, server_default=true())  # may sign in
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class XmppSettings(db.Model):
    """One row: how the embedded XMPP service is set up (appliance.xmpp.service)."""

    __tablename__ = "xmpp_settings"
    id: Mapped[int] = mapped_column(primary_key=True)
    domain: Mapped[str] = mapped_column(String(253), default="")
    c2s_port: Mapped[int] = mapped_column(default=5222)
    s2s_port: Mapped[int] = mapped_column(default=5269)
    interfaces: Mapped[str] = mapped_column(String(255), default="*")
    cert_file: Mapped[str] = mapped_column(String(1024), default="")
    key_file: Mapped[str] = mapped_column(String(1024), default="")
    ca_file: Mapped[str] = mapped_column(String(1024), default="")
    applied_at: Mapped[datetime | None]
    apply_message: Mapped[str] = mapped_column(Text, default="")
    sessions_reported_at: Mapped[datetime | None]  # the service's last report of who is in


class XmppCredential(db.Model):
    """The XMPP password of an account that is not bound to a directory: SCRAM keys only
    (appliance.core.client.scram), never the password."""

    __tablename__ = "xmpp_credential"
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"),
                                            primary_key=True)
    keys: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime] = mapped_column(default=utcnow)


class XmppPasswordLink(db.Model):
    """A one-time link with which the user of an account sets its XMPP password."""

    __tablename__ = "xmpp_password_link"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"),
                                            index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the link's token
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class XmppSession(db.Model):
    """A resource signed in to the XMPP service, as it last reported (the whole set is
    replaced at each report; `reported_at` tells how fresh it is)."""

    __tablename__ = "xmpp_session"
    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id", ondelete="CASCADE"),
                                               index=True)
    jid: Mapped[str] = mapped_column(String(520), index=True)  # bare
    resource: Mapped[str] = mapped_column(String(255), default="")
    since: Mapped[datetime | None]
    reported_at: Mapped[datetime] = mapped_column(default=utcnow)


class XmppSignal(db.Model):
    """What the XMPP service must act on: an enterprise's directory changed ("directory"),
    or an account may no longer be signed in ("signout", with its address)."""

    __tablename__ = "xmpp_signal"
    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id", ondelete="CASCADE"),
                                               index=True)
    kind: Mapped[str] = mapped_column(String(16))
    jid: Mapped[str] = mapped_column(String(520), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class AuditEntry(db.Model):
    __tablename__ = "audit_entry"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32), index=True)  # create, update, delete, ...
    object_type: Mapped[str] = mapped_column(String(64), index=True)
    object_id: Mapped[str] = mapped_column(String(64), default="")
    object_label: Mapped[str] = mapped_column(String(255), default="")
    summary: Mapped[str] = mapped_column(Text, default="")  # JSON before/after, no secrets


class JobRun(db.Model):
    __tablename__ = "job_run"
    __table_args__ = (
        # One active run per kind and target, whichever process asks: the database itself
        # refuses a second one (appliance.jobs inserts with ON CONFLICT DO NOTHING).
        Index(
            "uq_job_run_active_kind_target", "kind", "target", unique=True,
            sqlite_where=text("state IN ('queued', 'running')"),
            postgresql_where=text("state IN ('queued', 'running')"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(128))
    label: Mapped[str] = mapped_column(String(255), default="")
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    progress: Mapped[int] = mapped_column(default=0)  # percent
    counts: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    message: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    triggered_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # The process that claimed the run ("host:pid:token", appliance.job_owners), and when it
    # last said it is alive; a running run whose owner stopped beating is interrupted.
    owner: Mapped[str] = mapped_column(String(255), default="")
    heartbeat_at: Mapped[datetime | None]


class JobSchedule(db.Model):
    __tablename__ = "job_schedule"
    __table_args__ = (UniqueConstraint("kind", "target"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128))
    spec: Mapped[str] = mapped_column(Text, default="{}")  # JSON, read by the kind's next_run
    next_run_at: Mapped[datetime | None] = mapped_column(index=True)
    last_run_id: Mapped[int | None]
