"""Deterministic seed data for local work and benchmarks, loaded in bulk (COPY on PostgreSQL).

The same ``seed`` always produces the same rows (ids included): names, emails, titles
and timestamps come from one seeded random generator and a fixed epoch.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from datalayer.connection.bulk import copy_rows
from datalayer.connection.database import db
from datalayer.errors import ConflictError, DataLayerError, translate_errors
from datalayer.models import (
    AdminFlag,
    AdminImpersonationSession,
    AdminSession,
    AdminTenantNote,
    AdminUser,
    AdminUserNote,
    Notification,
    Tenant,
    TenantMember,
    Todo,
    User,
    Waitlist,
)
from datalayer.models.admin_console import FLAG_TYPES
from datalayer.models.notifications import NOTIFICATION_TYPES
from datalayer.models.tenant import TENANT_TYPES

EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SPAN_SECONDS = 180 * 24 * 3600

FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia",
         "Leslie", "Margaret", "John", "Hedy", "Linus", "Guido", "Yukihiro")
LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
        "Perlman", "Lamport", "Hamilton", "Backus", "Lamarr", "Torvalds", "Rossum", "Matsumoto")
VERBS = ("Write", "Review", "Ship", "Plan", "Fix", "Refactor", "Test", "Document", "Deploy")
NOUNS = ("the onboarding flow", "billing webhooks", "the release notes", "invite emails",
         "the dashboard", "push notifications", "the data export", "the audit trail")
TEAM = ("Apollo", "Borealis", "Cygnus", "Draco", "Eridanus", "Fornax", "Hydra", "Lyra")
IMPERSONATIONS_PER_ADMIN = 2  # ended ones: an admin holds at most one open session
NOTES_PER_ADMIN = 2
TENANT_FLAGS = tuple(f for f in FLAG_TYPES if f != "custom")


@dataclass(frozen=True)
class SeedPlan:
    """How much to make."""

    tenants: int = 10
    users_per_tenant: int = 5
    todos_per_user: int = 20
    notifications_per_user: int = 5
    waitlist: int = 0
    admins: int = 2  # back-office users, each with a session, impersonations and notes
    seed: int = 1

    def counts(self) -> dict[str, int]:
        """Return the number of rows each table will get."""
        users = self.tenants * self.users_per_tenant
        return {
            "user": users,
            "tenants": self.tenants,
            "tenant_members": users,
            "todos": users * self.todos_per_user,
            "notifications": users * self.notifications_per_user,
            "waitlist": self.waitlist,
            "admin_users": self.admins,
            "admin_sessions": self.admins,
            "admin_impersonation_sessions": self.admins * IMPERSONATIONS_PER_ADMIN,
            "admin_flags": self.tenants if self.admins else 0,
            "admin_user_notes": self.admins * NOTES_PER_ADMIN,
            "admin_tenant_notes": self.tenants if self.admins else 0,
        }


class _Ids:
    """Time-ordered UUIDs (version 7 layout) drawn from the seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def at(self, when: dt.datetime) -> str:
        ms = int(when.timestamp() * 1000)
        value = (ms << 80) | (0x7 << 76) | (self.rng.getrandbits(12) << 64)
        value |= (0b10 << 62) | self.rng.getrandbits(62)
        return str(uuid.UUID(int=value))


class _Generator:
    def __init__(self, plan: SeedPlan) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.ids = _Ids(self.rng)
        self.tenant_ids: list[str] = []
        self.user_ids: list[tuple[str, str]] = []  # (user id, tenant id)
        self.admin_ids: list[str] = []

    def when(self, lo: int = 0) -> dt.datetime:
        return EPOCH + dt.timedelta(seconds=self.rng.randint(lo, SPAN_SECONDS))

    def tenants(self) -> Iterator[Sequence[Any]]:
        for n in range(self.plan.tenants):
            created = self.when()
            tenant_id = self.ids.at(created)
            self.tenant_ids.append(tenant_id)
            name = f"{self.rng.choice(TEAM)} {n + 1}"
            yield (tenant_id, name, self.rng.choice(TENANT_TYPES), created, created)

    def users(self) -> Iterator[Sequence[Any]]:
        for t, tenant_id in enumerate(self.tenant_ids):
            for m in range(self.plan.users_per_tenant):
                created = self.when()
                user_id = self.ids.at(created)
                self.user_ids.append((user_id, tenant_id))
                first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
                email = f"{first}.{last}.{t}.{m}.s{self.plan.seed}@example.test".lower()
                yield (user_id, f"{first} {last}", email, True, tenant_id, created, created)

    def members(self) -> Iterator[Sequence[Any]]:
        for index, (user_id, tenant_id) in enumerate(self.user_ids):
            first_of_tenant = index % self.plan.users_per_tenant == 0
            role = "owner" if first_of_tenant else self.rng.choice(("admin", "member", "member"))
            joined = self.when()
            yield (self.ids.at(joined), tenant_id, user_id, role, "contributor", joined, joined)

    def todos(self) -> Iterator[Sequence[Any]]:
        for user_id, tenant_id in self.user_ids:
            for _ in range(self.plan.todos_per_user):
                created = self.when()
                title = f"{self.rng.choice(VERBS)} {self.rng.choice(NOUNS)}"
                scope = tenant_id if self.rng.random() < 0.7 else None
                yield (self.ids.at(created), user_id, scope, title, None,
                       self.rng.random() < 0.4, None, created, created)

    def notifications(self) -> Iterator[Sequence[Any]]:
        for user_id, tenant_id in self.user_ids:
            for _ in range(self.plan.notifications_per_user):
                created = self.when()
                kind = self.rng.choice(NOTIFICATION_TYPES)
                read_at = created + dt.timedelta(hours=1) if self.rng.random() < 0.5 else None
                yield (self.ids.at(created), tenant_id, user_id, kind,
                       kind.replace("_", " ").capitalize(), "Something happened.",
                       created, read_at)

    def waitlist(self) -> Iterator[Sequence[Any]]:
        for n in range(self.plan.waitlist):
            created = self.when()
            yield (self.ids.at(created), f"waiting{n}.s{self.plan.seed}@example.test", created)


    # --- the admin console: back-office users, their sessions, impersonations, flags, notes

    def admin_users(self) -> Iterator[Sequence[Any]]:
        for n in range(self.plan.admins):
            created = self.when()
            admin_id = self.ids.at(created)
            self.admin_ids.append(admin_id)
            name = f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"
            email = f"admin{n}.s{self.plan.seed}@example.test"
            yield (admin_id, email, name, "active", created, created)

    def admin_sessions(self) -> Iterator[Sequence[Any]]:
        for admin_id in self.admin_ids:
            created = self.when()
            token = f"{self.rng.getrandbits(128):032x}"
            yield (self.ids.at(created), admin_id, token, created + dt.timedelta(days=7),
                   created, created)

    def admin_impersonation_sessions(self) -> Iterator[Sequence[Any]]:
        for admin_id in self.admin_ids:
            for _ in range(IMPERSONATIONS_PER_ADMIN):
                started = self.when()
                user_id, tenant_id = self.rng.choice(self.user_ids)
                yield (self.ids.at(started), admin_id, user_id, tenant_id, "read_only",
                       "support ticket", started, started + dt.timedelta(minutes=30),
                       started + dt.timedelta(minutes=10), "manual")

    def admin_flags(self) -> Iterator[Sequence[Any]]:
        if not self.admin_ids:
            return
        for tenant_id in self.tenant_ids:
            created = self.when()
            yield (self.ids.at(created), "tenant", tenant_id, self.rng.choice(TENANT_FLAGS),
                   "seeded", self.rng.choice(self.admin_ids), created)

    def admin_user_notes(self) -> Iterator[Sequence[Any]]:
        for admin_id in self.admin_ids:
            for _ in range(NOTES_PER_ADMIN):
                created = self.when()
                user_id, _ = self.rng.choice(self.user_ids)
                yield (self.ids.at(created), user_id, admin_id, "Called about billing.",
                       created, created)

    def admin_tenant_notes(self) -> Iterator[Sequence[Any]]:
        if not self.admin_ids:
            return
        for tenant_id in self.tenant_ids:
            created = self.when()
            yield (self.ids.at(created), tenant_id, self.rng.choice(self.admin_ids),
                   "Renewal due next quarter.", created, created)


TABLES: tuple[tuple[str, Any, tuple[str, ...]], ...] = (
    ("tenants", Tenant, ("id", "name", "type", "created_at", "updated_at")),
    ("user", User, ("id", "name", "email", "email_verified", "active_tenant_id",
                    "created_at", "updated_at")),
    ("tenant_members", TenantMember, ("id", "tenant_id", "user_id", "role", "member_role",
                                      "joined_at", "updated_at")),
    ("todos", Todo, ("id", "user_id", "tenant_id", "title", "description", "completed",
                     "due_date", "created_at", "updated_at")),
    ("notifications", Notification, ("id", "tenant_id", "recipient_user_id", "type", "title",
                                     "body", "created_at", "read_at")),
    ("waitlist", Waitlist, ("id", "email", "created_at")),
    ("admin_users", AdminUser, ("id", "email", "name", "status", "created_at", "updated_at")),
    ("admin_sessions", AdminSession, ("id", "admin_user_id", "token", "expires_at",
                                      "created_at", "updated_at")),
    ("admin_impersonation_sessions", AdminImpersonationSession, (
        "id", "admin_user_id", "target_user_id", "target_tenant_id", "scope", "reason",
        "started_at", "expires_at", "ended_at", "end_reason")),
    ("admin_flags", AdminFlag, ("id", "target_type", "target_id", "flag_type", "reason",
                                "created_by", "created_at")),
    ("admin_user_notes", AdminUserNote, ("id", "user_id", "admin_user_id", "note",
                                         "created_at", "updated_at")),
    ("admin_tenant_notes", AdminTenantNote, ("id", "tenant_id", "admin_user_id", "note",
                                             "created_at", "updated_at")),
)


def _columns_for(
    table: str, model: Any, columns: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """Check the seed's columns against the model; return them with the columns the seed
    leaves to the model's defaults, and those defaults (values or callables).

    A column the model gained follows on its own when it has a default or is nullable;
    a renamed or removed column, or a new NOT NULL column without a default, is refused
    with a message naming it.
    """
    known = model._meta.columns
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise DataLayerError(
            f"the seed writes {', '.join(f'{table}.{c}' for c in unknown)}, which "
            f"{model.__name__} no longer has (renamed or removed?): update the {table} "
            "rows in datalayer/seed.py"
        )
    defaulted = [(c, f.default) for c, f in known.items() if c not in columns and f.default is not None]
    missing = [c for c, f in known.items() if c not in columns and f.default is None and not f.null]
    if missing:
        raise DataLayerError(
            f"the seed gives no value for {', '.join(f'{table}.{c}' for c in missing)} "
            "(NOT NULL, no default in the model): add it to the rows in datalayer/seed.py"
        )
    return columns + tuple(c for c, _ in defaulted), tuple(d for _, d in defaulted)


def _with_defaults(rows: Iterator[Sequence[Any]], defaults: tuple[Any, ...]) -> Iterator[Sequence[Any]]:
    if not defaults:
        yield from rows
        return
    for row in rows:
        yield (*row, *(d() if callable(d) else d for d in defaults))


def seed(plan: SeedPlan, progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Fill the bound database following ``plan``; return the rows written per table.

    Refuses (ConflictError) when this seed was loaded already: pick another ``seed``;
    refuses (DataLayerError, naming the column) when the seed no longer fits the models.
    """
    planned = {name: _columns_for(name, model, columns) for name, model, columns in TABLES}
    generator = _Generator(plan)
    sources = {
        "tenants": generator.tenants, "user": generator.users,
        "tenant_members": generator.members, "todos": generator.todos,
        "notifications": generator.notifications, "waitlist": generator.waitlist,
        "admin_users": generator.admin_users, "admin_sessions": generator.admin_sessions,
        "admin_impersonation_sessions": generator.admin_impersonation_sessions,
        "admin_flags": generator.admin_flags, "admin_user_notes": generator.admin_user_notes,
        "admin_tenant_notes": generator.admin_tenant_notes,
    }
    written: dict[str, int] = {}
    with translate_errors(), db.atomic():  # the transaction's own BEGIN/COMMIT too
        for name, model, _ in TABLES:
            columns, defaults = planned[name]
            rows = _reporting(_with_defaults(sources[name](), defaults), progress)
            try:
                written[name] = copy_rows(model, columns, rows)
            except ConflictError as exc:
                raise ConflictError(
                    f"seed {plan.seed} is already loaded in this database; "
                    "use another --seed or a fresh database"
                ) from exc
    return written


def _reporting(rows: Iterator[Sequence[Any]],
               progress: Callable[[int], None] | None) -> Iterator[Sequence[Any]]:
    if progress is None:
        yield from rows
        return
    pending = 0
    for row in rows:
        yield row
        pending += 1
        if pending == 5000:
            progress(pending)
            pending = 0
    progress(pending)
