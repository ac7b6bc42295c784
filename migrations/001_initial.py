"""Peewee migrations -- 001_initial.py.

The whole schema of the 22 tables, as ``datalayer.models.create_all()`` builds it.

Drafted with ``pw_migrate create --auto --auto-source datalayer.models`` and rewritten
by hand: server-side DEFAULTs, named CHECK constraints, partial indexes, the deferred
``user.active_tenant_id`` foreign key and the audit log's append-only trigger are
things the generator cannot write. Like every migration, this file never imports
``datalayer``: the helpers below are frozen copies, so it still runs unchanged after
the models move on (later migrations reach these tables through ``migrator.orm``).
"""

from __future__ import annotations

import peewee as pw
from peewee_migrate import Migrator


class Dialect(pw.Node):
    """A piece of column DDL written for each backend (PostgreSQL, SQLite)."""

    prefix = ""

    def __init__(self, postgres, sqlite=None):
        self.postgres = postgres
        self.sqlite = postgres if sqlite is None else sqlite

    def __sql__(self, ctx):
        # peewee gives the context no dialect name; the parameter style tells SQLite apart.
        expr = self.sqlite if ctx.state.param == "?" else self.postgres
        return ctx.literal(self.prefix + expr if expr else "")


class ServerDefault(Dialect):
    """A column's server-side DEFAULT."""

    prefix = "DEFAULT "


class TimestampTZField(pw.DateTimeField):
    """``timestamptz`` on PostgreSQL, ``TIMESTAMPTZ`` (ISO text, UTC) on SQLite."""

    field_type = "TIMESTAMPTZ"


SQLITE_NOW = "(strftime('%Y-%m-%d %H:%M:%f000+00:00', 'now'))"
NOW = ServerDefault("now()", SQLITE_NOW)
IN_7_DAYS = ServerDefault(
    "(now() + interval '7 days')",
    "(strftime('%Y-%m-%d %H:%M:%f000+00:00', 'now', '+7 days'))",
)
FALSE = ServerDefault("false", "0")
TRUE = ServerDefault("true", "1")
ZERO = ServerDefault("0")
EMPTY_JSON_LIST = ServerDefault("'[]'::jsonb", "'[]'")


def text_default(value):
    return ServerDefault("'" + value.replace("'", "''") + "'")


def int_default(value):
    return ServerDefault(str(int(value)))


def check(name, expression):
    return pw.SQL(f"CONSTRAINT {name} CHECK ({expression})")


def one_of(column, values, *, nullable=False):
    listed = ", ".join("'" + v + "'" for v in values)
    expr = f"{column} IN ({listed})"
    return f"{column} IS NULL OR {expr}" if nullable else expr


class Model(pw.Model):
    """Base of the models below: index names start with the table name, as in the models."""

    class Meta:
        legacy_table_names = False


def text_pk():
    return pw.TextField(primary_key=True)


def stamp():
    """``created_at`` / ``updated_at``: NOT NULL, DEFAULT now() on the server."""
    return TimestampTZField(constraints=[NOW])


# PostgreSQL names the deferred FK the way peewee's create_foreign_key() does; SQLite
# cannot add a constraint to an existing table, so there it is written inline.
USER_ACTIVE_TENANT_FK = "fk_user_active_tenant_id_refs_tenants"
USER_ACTIVE_TENANT_INLINE = Dialect("", 'REFERENCES "tenants" ("id") ON DELETE SET NULL')

# "%%": migrator.sql() runs through execute_sql with a parameter tuple, so psycopg2
# interpolates. Same text as datalayer.models.admin.AUDIT_APPEND_ONLY_SQL.
AUDIT_APPEND_ONLY_SQL = (
    """CREATE OR REPLACE FUNCTION admin_audit_log_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'admin_audit_log is append-only: %% is not allowed', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END;
    $$""",
    """CREATE TRIGGER admin_audit_log_append_only
    BEFORE UPDATE OR DELETE ON admin_audit_log
    FOR EACH ROW EXECUTE FUNCTION admin_audit_log_append_only()""",
    """CREATE TRIGGER admin_audit_log_no_truncate
    BEFORE TRUNCATE ON admin_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION admin_audit_log_append_only()""",
)
AUDIT_APPEND_ONLY_SQLITE = (
    """CREATE TRIGGER admin_audit_log_no_update BEFORE UPDATE ON admin_audit_log
    BEGIN SELECT RAISE(ABORT, 'admin_audit_log is append-only: UPDATE is not allowed'); END""",
    """CREATE TRIGGER admin_audit_log_no_delete BEFORE DELETE ON admin_audit_log
    BEGIN SELECT RAISE(ABORT, 'admin_audit_log is append-only: DELETE is not allowed'); END""",
)
DROP_AUDIT_APPEND_ONLY_SQL = (
    "DROP TRIGGER IF EXISTS admin_audit_log_append_only ON admin_audit_log",
    "DROP TRIGGER IF EXISTS admin_audit_log_no_truncate ON admin_audit_log",
    "DROP FUNCTION IF EXISTS admin_audit_log_append_only()",
)

# Creation order; rollback drops in reverse (children before parents, for SQLite).
TABLES = (
    "tenants", "user", "session", "account", "verification", "jwks",
    "tenant_members", "tenant_invites", "tenant_activity_daily",
    "notifications", "notification_deliveries", "notification_preferences",
    "notification_targets", "subscriptions", "subscription_events",
    "todos", "waitlist", "user_activity_daily",
    "admin_users", "admin_roles", "admin_user_roles", "admin_audit_log",
)


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    """Create the initial schema."""
    _auth_and_tenant(migrator)
    _notifications(migrator)
    _subscriptions_and_features(migrator)
    _admin(migrator)
    if not isinstance(database, pw.SqliteDatabase):
        migrator.sql(
            f'ALTER TABLE "user" ADD CONSTRAINT "{USER_ACTIVE_TENANT_FK}" '
            'FOREIGN KEY ("active_tenant_id") REFERENCES "tenants" ("id") ON DELETE SET NULL'
        )
        for statement in AUDIT_APPEND_ONLY_SQL:
            migrator.sql(statement)
    else:
        for statement in AUDIT_APPEND_ONLY_SQLITE:
            migrator.sql(statement)


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    """Drop the initial schema."""
    if not isinstance(database, pw.SqliteDatabase):
        for statement in DROP_AUDIT_APPEND_ONLY_SQL:
            migrator.sql(statement)
    for table in reversed(TABLES):
        migrator.remove_model(table)


def _auth_and_tenant(migrator):
    @migrator.create_model
    class Tenant(Model):
        id = text_pk()
        name = pw.TextField()
        type = pw.TextField(default="group", constraints=[text_default("group")])
        created_at = stamp()
        updated_at = stamp()

        class Meta:
            table_name = "tenants"
            constraints = [
                check("tenants_name_length_check", "length(name) BETWEEN 1 AND 100"),
                check("tenants_type_check",
                      one_of("type", ("team", "organization", "group", "family"))),
            ]

    @migrator.create_model
    class User(Model):
        id = text_pk()
        name = pw.TextField()
        email = pw.TextField(unique=True)
        email_verified = pw.BooleanField(default=False, constraints=[FALSE])
        image = pw.TextField(null=True)
        created_at = stamp()
        updated_at = stamp()
        analytics_consent = pw.TextField(default="anonymous",
                                         constraints=[text_default("anonymous")])
        first_seen_at = TimestampTZField(null=True)
        last_active_at = TimestampTZField(null=True)
        lifecycle_stage = pw.TextField(default="new", constraints=[text_default("new")])
        churn_risk_score = pw.IntegerField(null=True, default=0, constraints=[int_default(0)])
        is_power_user = pw.BooleanField(null=True, default=False, constraints=[FALSE])
        admin_role = pw.TextField(null=True)
        preferred_language = pw.TextField(null=True, default="en",
                                          constraints=[text_default("en")])
        # _deferred: no inline constraint from create_table (see USER_ACTIVE_TENANT_FK).
        active_tenant = pw.ForeignKeyField(
            Tenant, column_name="active_tenant_id", null=True, on_delete="SET NULL",
            backref="active_users", _deferred=True, constraints=[USER_ACTIVE_TENANT_INLINE],
        )

        class Meta:
            table_name = "user"
            constraints = [
                check("user_analytics_consent_check",
                      one_of("analytics_consent", ("disabled", "anonymous", "enabled"))),
                check("user_lifecycle_stage_check",
                      one_of("lifecycle_stage",
                             ("new", "activated", "engaged", "at_risk", "churned"))),
                check("user_admin_role_check",
                      one_of("admin_role", ("read_only", "support_rw", "super_admin"),
                             nullable=True)),
            ]

    @migrator.create_model
    class Session(Model):
        id = text_pk()
        expires_at = TimestampTZField()
        token = pw.TextField(unique=True)
        created_at = stamp()
        updated_at = stamp()
        ip_address = pw.TextField(null=True)
        user_agent = pw.TextField(null=True)
        user = pw.ForeignKeyField(User, column_name="user_id", on_delete="CASCADE",
                                  backref="sessions")

        class Meta:
            table_name = "session"

    @migrator.create_model
    class Account(Model):
        id = text_pk()
        account_id = pw.TextField()
        provider_id = pw.TextField()
        user = pw.ForeignKeyField(User, column_name="user_id", on_delete="CASCADE",
                                  backref="accounts")
        access_token = pw.TextField(null=True)
        refresh_token = pw.TextField(null=True)
        id_token = pw.TextField(null=True)
        access_token_expires_at = TimestampTZField(null=True)
        refresh_token_expires_at = TimestampTZField(null=True)
        scope = pw.TextField(null=True)
        password = pw.TextField(null=True)
        created_at = stamp()
        updated_at = stamp()

        class Meta:
            table_name = "account"
            indexes = [(("provider_id", "account_id"), True)]

    @migrator.create_model
    class Verification(Model):
        id = text_pk()
        identifier = pw.TextField(index=True)
        value = pw.TextField()
        expires_at = TimestampTZField()
        created_at = stamp()
        updated_at = stamp()

        class Meta:
            table_name = "verification"

    @migrator.create_model
    class Jwks(Model):
        id = text_pk()
        public_key = pw.TextField()
        private_key = pw.TextField()
        created_at = stamp()
        expires_at = TimestampTZField(null=True)

        class Meta:
            table_name = "jwks"

    @migrator.create_model
    class TenantMember(Model):
        id = text_pk()
        tenant = pw.ForeignKeyField(Tenant, column_name="tenant_id", on_delete="CASCADE",
                                    backref="members", index=False)
        user = pw.ForeignKeyField(User, column_name="user_id", on_delete="CASCADE",
                                  backref="memberships")
        role = pw.TextField(default="member", constraints=[text_default("member")])
        member_role = pw.TextField(null=True, default="contributor",
                                   constraints=[text_default("contributor")])
        joined_at = stamp()
        updated_at = stamp()

        class Meta:
            table_name = "tenant_members"
            indexes = [(("tenant", "user"), True)]
            constraints = [
                check("tenant_members_role_check",
                      one_of("role", ("owner", "admin", "member"))),
                check("tenant_members_member_role_check",
                      one_of("member_role", ("editor", "viewer", "contributor", "moderator"),
                             nullable=True)),
            ]

    TenantMember.add_index(TenantMember.index(
        TenantMember.tenant, TenantMember.joined_at, TenantMember.id,
        name="tenant_members_tenant_joined_idx"))

    @migrator.create_model
    class TenantInvite(Model):
        id = text_pk()
        tenant = pw.ForeignKeyField(Tenant, column_name="tenant_id", on_delete="CASCADE",
                                    backref="invites")
        invited_by = pw.ForeignKeyField(User, column_name="invited_by", on_delete="CASCADE",
                                        backref="sent_invites", object_id_name="invited_by_id")
        email = pw.TextField()
        role = pw.TextField(default="member", constraints=[text_default("member")])
        token_hash = pw.TextField(unique=True)
        status = pw.TextField(default="pending", constraints=[text_default("pending")])
        expires_at = TimestampTZField(constraints=[IN_7_DAYS])
        accepted_at = TimestampTZField(null=True)
        created_at = stamp()
        updated_at = stamp()

        class Meta:
            table_name = "tenant_invites"
            constraints = [
                check("tenant_invites_role_check", one_of("role", ("admin", "member"))),
                check("tenant_invites_status_check",
                      one_of("status", ("pending", "accepted", "expired", "revoked"))),
            ]

    TenantInvite.add_index(TenantInvite.index(
        TenantInvite.tenant, TenantInvite.email, unique=True,
        where=pw.SQL("status = 'pending'"), name="tenant_invites_pending_email_uniq",
    ))

    @migrator.create_model
    class TenantActivityDaily(Model):
        id = text_pk()
        tenant = pw.ForeignKeyField(Tenant, column_name="tenant_id", on_delete="CASCADE",
                                    backref="activity", index=False)
        date = pw.DateField()
        active_users = pw.IntegerField(default=0, constraints=[ZERO])
        event_count = pw.IntegerField(default=0, constraints=[ZERO])
        new_members = pw.IntegerField(default=0, constraints=[ZERO])
        created_at = stamp()
        updated_at = stamp()

        class Meta:
            table_name = "tenant_activity_daily"
            indexes = [(("tenant", "date"), True)]


def _notifications(migrator):
    Tenant, User = migrator.orm["tenants"], migrator.orm["user"]

    @migrator.create_model
    class Notification(Model):
        id = text_pk()
        tenant = pw.ForeignKeyField(Tenant, column_name="tenant_id", null=True,
                                    on_delete="CASCADE", backref="notifications")
        recipient_user = pw.ForeignKeyField(User, column_name="recipient_user_id",
                                            on_delete="CASCADE", backref="notifications",
                                            index=False)
        actor_user = pw.ForeignKeyField(User, column_name="actor_user_id", null=True,
                                        on_delete="SET NULL", backref="acted_notifications")
        type = pw.TextField()
        title = pw.TextField()
        body = pw.TextField()
        deep_link = pw.TextField(null=True)
        data = pw.JSONField(null=True)
        batch_key = pw.TextField(null=True, index=True)
        created_at = stamp()
        read_at = TimestampTZField(null=True)
        archived_at = TimestampTZField(null=True)

        class Meta:
            table_name = "notifications"
            constraints = [
                check("notifications_type_check", one_of("type", (
                    "member_joined", "member_left", "member_removed", "role_changed",
                    "invite_received", "invite_accepted", "todo_assigned", "todo_completed",
                    "todo_due_soon", "subscription_started", "subscription_renewed",
                    "subscription_canceled", "payment_failed", "system_announcement",
                    "mention",
                ))),
                check("notifications_title_length_check", "length(title) <= 255"),
                check("notifications_deep_link_length_check",
                      "deep_link IS NULL OR length(deep_link) <= 500"),
            ]

    Notification.add_index(Notification.index(
        Notification.recipient_user, Notification.tenant, Notification.created_at,
        Notification.id, name="notifications_inbox_idx",
    ))
    Notification.add_index(Notification.index(
        Notification.recipient_user, where=pw.SQL("read_at IS NULL AND archived_at IS NULL"),
        name="notifications_unread_idx",
    ))
    Notification.add_index(Notification.index(
        Notification.recipient_user, Notification.created_at, Notification.id,
        name="notifications_recipient_recent_idx",
    ))

    @migrator.create_model
    class NotificationDelivery(Model):
        id = text_pk()
        notification = pw.ForeignKeyField(Notification, column_name="notification_id",
                                          on_delete="CASCADE", backref="deliveries",
                                          index=False)
        channel = pw.TextField()
        status = pw.TextField(default="pending", constraints=[text_default("pending")])
        attempts = pw.IntegerField(default=0, constraints=[ZERO])
        max_attempts = pw.IntegerField(default=5, constraints=[int_default(5)])
        next_attempt_at = TimestampTZField(constraints=[NOW])
        locked_at = TimestampTZField(null=True)
        locked_by = pw.TextField(null=True)
        provider_message_id = pw.TextField(null=True)
        error = pw.TextField(null=True)
        sent_at = TimestampTZField(null=True)
        created_at = stamp()
        updated_at = stamp()

        class Meta:
            table_name = "notification_deliveries"
            indexes = [(("notification", "channel"), True)]
            constraints = [
                check("notification_deliveries_channel_check",
                      one_of("channel", ("in_app", "push", "email"))),
                check("notification_deliveries_status_check", one_of(
                    "status", ("pending", "processing", "sent", "failed", "skipped"))),
            ]

    NotificationDelivery.add_index(NotificationDelivery.index(
        NotificationDelivery.next_attempt_at, where=pw.SQL("status = 'pending'"),
        name="notification_deliveries_due_idx",
    ))
    NotificationDelivery.add_index(NotificationDelivery.index(
        NotificationDelivery.locked_at, where=pw.SQL("status = 'processing'"),
        name="notification_deliveries_lease_idx",
    ))

    @migrator.create_model
    class NotificationPreference(Model):
        id = text_pk()
        user = pw.ForeignKeyField(User, column_name="user_id", on_delete="CASCADE",
                                  backref="notification_preferences", index=False)
        tenant = pw.ForeignKeyField(Tenant, column_name="tenant_id", null=True,
                                    on_delete="CASCADE", backref="notification_preferences")
        in_app_enabled = pw.BooleanField(default=True, constraints=[TRUE])
        push_enabled = pw.BooleanField(default=False, constraints=[FALSE])
        email_enabled = pw.BooleanField(default=True, constraints=[TRUE])
        marketing_email_enabled = pw.BooleanField(default=False, constraints=[FALSE])
        created_at = stamp()
        updated_at = stamp()

        class Meta:
            table_name = "notification_preferences"

    NotificationPreference.add_index(NotificationPreference.index(
        NotificationPreference.user, unique=True, where=pw.SQL("tenant_id IS NULL"),
        name="notification_preferences_global_uniq",
    ))
    NotificationPreference.add_index(NotificationPreference.index(
        NotificationPreference.user, NotificationPreference.tenant, unique=True,
        where=pw.SQL("tenant_id IS NOT NULL"), name="notification_preferences_tenant_uniq",
    ))

    @migrator.create_model
    class NotificationTarget(Model):
        id = text_pk()
        user = pw.ForeignKeyField(User, column_name="user_id", on_delete="CASCADE",
                                  backref="notification_targets", unique=True)
        novu_subscriber_id = pw.TextField(null=True)
        expo_push_token = pw.TextField(null=True)
        last_active_at = TimestampTZField(null=True)
        created_at = stamp()
        updated_at = stamp()

        class Meta:
            table_name = "notification_targets"


def _subscriptions_and_features(migrator):
    Tenant, User = migrator.orm["tenants"], migrator.orm["user"]

    @migrator.create_model
    class Subscription(Model):
        id = text_pk()
        tenant = pw.ForeignKeyField(Tenant, column_name="tenant_id", on_delete="CASCADE",
                                    backref="subscriptions", index=False)
        purchased_by_user = pw.ForeignKeyField(User, column_name="purchased_by_user_id",
                                               null=True, on_delete="SET NULL",
                                               backref="purchases")
        status = pw.TextField(default="active", constraints=[text_default("active")])
        plan_id = pw.TextField()
        plan_name = pw.TextField(null=True)
        current_period_start = TimestampTZField(null=True)
        current_period_end = TimestampTZField(null=True)
        cancel_at_period_end = pw.BooleanField(null=True, default=False, constraints=[FALSE])
        trial_start = TimestampTZField(null=True)
        trial_end = TimestampTZField(null=True)
        provider = pw.TextField()
        polar_subscription_id = pw.TextField(null=True)
        polar_customer_id = pw.TextField(null=True)
        revenuecat_app_user_id = pw.TextField(null=True, index=True)
        revenuecat_original_transaction_id = pw.TextField(null=True)
        last_event_at = TimestampTZField(null=True)
        created_at = stamp()
        updated_at = stamp()

        class Meta:
            table_name = "subscriptions"
            indexes = [(("tenant", "status"), False)]
            constraints = [
                check("subscriptions_status_check", one_of("status", (
                    "trialing", "active", "past_due", "canceled", "expired", "paused"))),
                check("subscriptions_provider_check",
                      one_of("provider", ("polar", "revenuecat"))),
            ]

    for column in ("polar_subscription_id", "revenuecat_original_transaction_id"):
        Subscription.add_index(Subscription.index(
            getattr(Subscription, column), unique=True,
            where=pw.SQL(f"{column} IS NOT NULL"), name=f"subscriptions_{column}_uniq",
        ))

    @migrator.create_model
    class SubscriptionEvent(Model):
        id = text_pk()
        provider = pw.TextField()
        event_id = pw.TextField()
        event_type = pw.TextField()
        payload = pw.JSONField(null=True)
        subscription = pw.ForeignKeyField(Subscription, column_name="subscription_id",
                                          null=True, on_delete="SET NULL", backref="events")
        outcome = pw.TextField()
        occurred_at = TimestampTZField(null=True)
        processed_at = TimestampTZField(constraints=[NOW])

        class Meta:
            table_name = "subscription_events"
            indexes = [(("provider", "event_id"), True)]
            constraints = [
                check("subscription_events_outcome_check", one_of("outcome", (
                    "applied", "duplicate_ignored", "stale_ignored", "ignored_type",
                    "not_linked"))),
            ]

    @migrator.create_model
    class Todo(Model):
        id = text_pk()
        user = pw.ForeignKeyField(User, column_name="user_id", on_delete="CASCADE",
                                  backref="todos", index=False)
        tenant = pw.ForeignKeyField(Tenant, column_name="tenant_id", null=True,
                                    on_delete="CASCADE", backref="todos")
        title = pw.TextField()
        description = pw.TextField(null=True)
        completed = pw.BooleanField(default=False, constraints=[FALSE])
        due_date = TimestampTZField(null=True)
        created_at = stamp()
        updated_at = stamp()

        class Meta:
            table_name = "todos"
            constraints = [
                check("todos_title_length_check", "length(title) BETWEEN 1 AND 255"),
                check("todos_description_length_check",
                      "description IS NULL OR length(description) <= 1000"),
            ]

    Todo.add_index(Todo.index(Todo.user, Todo.tenant, Todo.created_at, Todo.id,
                              name="todos_user_list_idx"))
    Todo.add_index(Todo.index(Todo.user, Todo.created_at, Todo.id,
                              where=pw.SQL("tenant_id IS NULL"),
                              name="todos_user_personal_idx"))

    @migrator.create_model
    class Waitlist(Model):
        id = text_pk()
        email = pw.CharField(max_length=255, unique=True)
        created_at = stamp()

        class Meta:
            table_name = "waitlist"
            constraints = [check("waitlist_email_lower_check", "email = lower(email)")]

    Waitlist.add_index(Waitlist.index(Waitlist.created_at, Waitlist.id,
                                      name="waitlist_recent_idx"))

    @migrator.create_model
    class UserActivityDaily(Model):
        id = text_pk()
        user = pw.ForeignKeyField(User, column_name="user_id", on_delete="CASCADE",
                                  backref="activity", index=False)
        date = pw.DateField()
        event_count = pw.IntegerField(default=0, constraints=[ZERO])
        session_count = pw.IntegerField(default=0, constraints=[ZERO])
        active_minutes = pw.IntegerField(default=0, constraints=[ZERO])
        features_used = pw.JSONField(constraints=[EMPTY_JSON_LIST])
        created_at = stamp()
        updated_at = stamp()

        class Meta:
            table_name = "user_activity_daily"
            indexes = [(("user", "date"), True)]


def _admin(migrator):
    @migrator.create_model
    class AdminUser(Model):
        id = text_pk()
        email = pw.TextField(unique=True)
        name = pw.TextField(null=True)
        password_hash = pw.TextField(null=True)
        company = pw.TextField(default="", constraints=[text_default("")])
        status = pw.TextField(default="pending", constraints=[text_default("pending")],
                              index=True)
        avatar_url = pw.TextField(null=True)
        created_at = stamp()
        updated_at = stamp()
        last_login_at = TimestampTZField(null=True)
        invited_by = pw.TextField(null=True)

        class Meta:
            table_name = "admin_users"
            constraints = [check("admin_users_status_check",
                                 one_of("status", ("active", "suspended", "pending")))]

    @migrator.create_model
    class AdminRole(Model):
        key = pw.TextField(primary_key=True)
        name = pw.TextField()
        description = pw.TextField(null=True)
        permissions = pw.JSONField(constraints=[EMPTY_JSON_LIST])
        created_at = stamp()

        class Meta:
            table_name = "admin_roles"

    @migrator.create_model
    class AdminUserRole(Model):
        admin_user = pw.ForeignKeyField(AdminUser, column_name="admin_user_id",
                                        on_delete="CASCADE", backref="role_grants",
                                        index=False)
        role_key = pw.ForeignKeyField(AdminRole, column_name="role_key", on_delete="CASCADE",
                                      backref="grants", object_id_name="role_key_id")
        granted_by = pw.ForeignKeyField(AdminUser, column_name="granted_by", null=True,
                                        backref="granted_roles", object_id_name="granted_by_id")
        granted_at = stamp()

        class Meta:
            table_name = "admin_user_roles"
            primary_key = pw.CompositeKey("admin_user", "role_key")

    @migrator.create_model
    class AdminAuditLog(Model):
        id = text_pk()
        admin_user = pw.ForeignKeyField(AdminUser, column_name="admin_user_id",
                                        backref="audit_entries", index=False)
        action = pw.TextField()
        target_type = pw.TextField()
        target_id = pw.TextField(null=True)
        reason = pw.TextField(null=True)
        metadata = pw.JSONField(null=True)
        ip = pw.TextField(null=True)
        user_agent = pw.TextField(null=True)
        impersonation_session_id = pw.TextField(null=True)
        created_at = stamp()

        class Meta:
            table_name = "admin_audit_log"
            indexes = [
                (("admin_user", "created_at"), False),
                (("target_type", "target_id", "created_at"), False),
                (("action", "created_at"), False),
            ]
            constraints = [check("admin_audit_log_target_type_check", one_of(
                "target_type",
                ("user", "tenant", "subscription", "admin_user", "webhook_event", "system"),
            ))]

    AdminAuditLog.add_index(AdminAuditLog.index(
        AdminAuditLog.created_at, AdminAuditLog.id, name="admin_audit_log_recent_idx"))
