"""How each original column becomes a target column, and the rules that make data fit.

Columns with the same name in the original and in the target are converted by type
(``convert``). ``RULES`` covers everything else, table by table: a column that changes
meaning (``token`` -> ``token_hash``, ``is_admin`` -> ``admin_role``), a value the
original never enforced (two pending invites for one address), the delivery log that
folds into the delivery queue. Every rule that changes data names itself and counts the
rows it changes (``Fix``); the README lists the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ORIGINAL = "public"
UTC = "'UTC'"

# (original type, target type) -> how to convert; {} is the original value.
CONVERSIONS = {
    ("timestamp without time zone", "timestamp with time zone"): "({} AT TIME ZONE 'UTC')",
    ("text[]", "jsonb"): "to_jsonb({})",
    ("json", "jsonb"): "{}::jsonb",
    ("uuid", "text"): "{}::text",
    ("character varying(255)", "text"): "{}::text",
    ("text", "character varying(255)"): "{}::varchar(255)",
    ("integer", "bigint"): "{}::bigint",
}


def convert(expression: str, original: str, target: str) -> str | None:
    """Convert ``expression`` of type ``original`` to ``target``; None if there is no rule."""
    if original == target:
        return expression
    template = CONVERSIONS.get((original, target))
    return template.format(expression) if template else None


@dataclass(frozen=True)
class Fix:
    """A change to the data that a rule makes; ``count_sql`` counts the rows it changes."""

    table: str
    description: str
    count_sql: str


@dataclass(frozen=True)
class TableRule:
    """How one target table is filled, beyond converting its same-named columns."""

    exprs: dict[str, str] = field(default_factory=dict)  # target column -> SQL over "o"
    consumes: frozenset[str] = frozenset()  # original columns read with no same-named target
    source: str | None = None  # a FROM item (aliased o) instead of the original table
    by_name: bool = True  # also fill same-named columns from the original
    rows_sql: str | None = None  # counts the rows ``source`` yields (default: the table's)
    fixes: tuple[Fix, ...] = ()
    what: str = ""  # one line for the plan


def _t(table: str) -> str:
    return f'{ORIGINAL}."{table}"'


def _user(variant: str) -> TableRule:
    dangling = (f"FROM {_t('user')} u WHERE u.active_tenant_id IS NOT NULL AND NOT EXISTS "
                f"(SELECT 1 FROM {_t('tenants')} t WHERE t.id = u.active_tenant_id)")
    exprs = {"active_tenant_id": (f"CASE WHEN o.active_tenant_id IN (SELECT id FROM "
                                  f"{_t('tenants')}) THEN o.active_tenant_id END")}
    fixes = [Fix("user", "active_tenant_id naming a tenant that no longer exists -> NULL "
                 "(the original had no foreign key)", f"SELECT count(*) {dangling}")]
    consumes: frozenset[str] = frozenset()
    if variant == "first":
        exprs["admin_role"] = "CASE WHEN o.is_admin THEN 'super_admin' END"
        consumes = frozenset({"is_admin"})
        fixes.append(Fix("user", "is_admin = true -> admin_role 'super_admin' (what the "
                         "package's migration 0001 does)",
                         f"SELECT count(*) FROM {_t('user')} WHERE is_admin"))
    return TableRule(exprs=exprs, consumes=consumes, fixes=tuple(fixes))


_PENDING_RANK = (f"(SELECT i.*, row_number() OVER (PARTITION BY i.tenant_id, i.email, i.status "
                 f"ORDER BY i.created_at DESC, i.id DESC) AS adopt_rank FROM "
                 f"{_t('tenant_invites')} i)")

INVITES = TableRule(
    source=_PENDING_RANK,
    exprs={
        # What datalayer.queries' hash_token computes: SHA-256 of the UTF-8 token, hex.
        "token_hash": "encode(sha256(convert_to(o.token, 'UTF8')), 'hex')",
        "status": "CASE WHEN o.status = 'pending' AND o.adopt_rank > 1 THEN 'expired' "
                  "ELSE o.status END",
        "accepted_at": "CASE WHEN o.status = 'accepted' THEN o.updated_at AT TIME ZONE 'UTC' END",
    },
    consumes=frozenset({"token"}),
    fixes=(
        Fix("tenant_invites", "pending invites to an address that has a newer pending "
            "invite in the same tenant -> 'expired' (the newest stays pending)",
            f"SELECT count(*) FROM {_PENDING_RANK} r WHERE r.status = 'pending' "
            "AND r.adopt_rank > 1"),
        Fix("tenant_invites", "accepted invites: accepted_at = updated_at (when the "
            "original accepted them)",
            f"SELECT count(*) FROM {_t('tenant_invites')} WHERE status = 'accepted'"),
    ),
    what="token -> token_hash (SHA-256, so e-mailed invites still work)",
)

_LATEST = "ORDER BY created_at DESC, id DESC"
_FOLD = (
    "(SELECT (array_agg(id {o}))[1] AS id, notification_id, channel, "
    "(array_agg(status {o}))[1] AS status, count(*) AS attempts, "
    "(array_agg(provider_message_id {o}) FILTER (WHERE provider_message_id IS NOT NULL))[1] "
    "AS provider_message_id, "
    "(array_agg(error {o}) FILTER (WHERE error IS NOT NULL))[1] AS error, "
    "max(created_at) FILTER (WHERE status = 'sent') AS sent_at, "
    "min(created_at) AS created_at, max(created_at) AS updated_at "
    "FROM {t} GROUP BY notification_id, channel)"
).format(o=_LATEST, t=_t("notification_deliveries"))

DELIVERIES = TableRule(
    source=_FOLD,
    by_name=False,
    exprs={
        "id": "o.id", "notification_id": "o.notification_id", "channel": "o.channel",
        "status": "o.status", "attempts": "o.attempts::integer",
        "provider_message_id": "o.provider_message_id", "error": "o.error",
        "sent_at": "o.sent_at AT TIME ZONE 'UTC'",
        "next_attempt_at": "o.updated_at AT TIME ZONE 'UTC'",
        "created_at": "o.created_at AT TIME ZONE 'UTC'",
        "updated_at": "o.updated_at AT TIME ZONE 'UTC'",
    },
    consumes=frozenset({"id", "notification_id", "channel", "status", "provider_message_id",
                        "error", "created_at"}),
    rows_sql=f"SELECT count(*) FROM {_FOLD} g",
    fixes=(Fix("notification_deliveries", "delivery log rows folded into one queue row "
               "per (notification, channel): latest status, attempts = log rows, last error",
               f"SELECT count(*) - (SELECT count(*) FROM {_FOLD} g) "
               f"FROM {_t('notification_deliveries')}"),),
    what="the delivery log folds into the delivery queue",
)

EVENTS = TableRule(
    exprs={"outcome": "'applied'"},
    fixes=(Fix("subscription_events", "events recorded by the original -> outcome 'applied'",
               f"SELECT count(*) FROM {_t('subscription_events')}"),),
)


def rules(variant: str) -> dict[str, TableRule]:
    """The table rules for a database with both migrations (``full``) or the first."""
    return {
        "user": _user(variant),
        "tenant_invites": INVITES,
        "notification_deliveries": DELIVERIES,
        "subscription_events": EVENTS,
    }
