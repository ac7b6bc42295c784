"""Peewee models, one module per domain; ``ALL_MODELS`` lists them in foreign-key order.

``find_models()`` finds every model defined under ``datalayer.models``, listed here or
not: ``makemigrations``, ``check`` and ``create_all`` use it, so a model added to a
domain module is seen without further registration.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import peewee

from datalayer.errors import register_unique
from datalayer.models.admin import (
    AdminAuditLog,
    AdminRole,
    AdminUser,
    AdminUserRole,
)
from datalayer.models.admin_console import (
    AdminFlag,
    AdminImpersonationSession,
    AdminSession,
    AdminTenantNote,
    AdminUserNote,
)
from datalayer.models.auth import Account, Jwks, Session, User, Verification
from datalayer.models.base import BaseModel, TimestampTZField, new_id, utcnow
from datalayer.models.features import Todo, UserActivityDaily, Waitlist
from datalayer.models.notifications import (
    Notification,
    NotificationDelivery,
    NotificationPreference,
    NotificationTarget,
)
from datalayer.models.subscriptions import Subscription, SubscriptionEvent
from datalayer.models.tenant import Tenant, TenantActivityDaily, TenantInvite, TenantMember

ALL_MODELS: list[type[BaseModel]] = [
    User,
    Tenant,
    Session,
    Account,
    Verification,
    Jwks,
    TenantMember,
    TenantInvite,
    TenantActivityDaily,
    Notification,
    NotificationDelivery,
    NotificationPreference,
    NotificationTarget,
    Subscription,
    SubscriptionEvent,
    Todo,
    Waitlist,
    UserActivityDaily,
    AdminUser,
    AdminRole,
    AdminUserRole,
    AdminAuditLog,
    AdminSession,
    AdminImpersonationSession,
    AdminFlag,
    AdminUserNote,
    AdminTenantNote,
]


def _register_unique_constraints(models: list[type[BaseModel]]) -> None:
    """Tell the error translation each table's primary key and unique indexes by name, so a
    duplicate raises the same ``ConflictError`` on PostgreSQL and SQLite."""
    for model in models:
        table = model._meta.table_name
        pk: Any = model._meta.primary_key
        if pk:
            key = pk.field_names if isinstance(pk, peewee.CompositeKey) else (pk.name,)
            columns = [model._meta.fields[name].column_name for name in key]
            register_unique(f"{table}_pkey", table, columns)
        for index in model._meta.fields_to_index():
            if index._unique:
                names = [getattr(e, "column_name", str(e)) for e in index._expressions]
                register_unique(index._name, table, names)


_register_unique_constraints(ALL_MODELS)


def find_models() -> list[type[BaseModel]]:
    """Return every model defined in a module of ``datalayer.models``, in foreign-key order.

    Imports each module of the package first, so a model in a module no one imports yet
    is found too; ``ALL_MODELS`` need not list it.
    """
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    found: list[type[BaseModel]] = []
    waiting: list[type[BaseModel]] = [BaseModel]
    while waiting:
        for subclass in waiting.pop().__subclasses__():
            waiting.append(subclass)
            if subclass.__module__.startswith(__name__ + ".") and subclass not in found:
                found.append(subclass)
    ordered: list[type[BaseModel]] = peewee.sort_models(  # type: ignore[attr-defined]  # not in peewee's stubs
        found)  # not in peewee's stubs
    return ordered


def create_all(database: peewee.Database | None = None,
               models: list[type[BaseModel]] | None = None) -> None:
    """Create every table from the models, with their deferred foreign keys and their
    ``Meta.triggers`` (tests, tooling and ``datalayer check``; production uses migrations).
    """
    database = database or BaseModel._meta.database
    models = find_models() if models is None else models
    sqlite = isinstance(database, peewee.SqliteDatabase)
    with database.bind_ctx(models):
        database.create_tables(models)
        for model in models:
            if not sqlite:  # SQLite declares them inline (see User.active_tenant)
                _create_deferred_keys(model)
            for trigger in getattr(model._meta, "triggers", None) or ():
                for statement in trigger.sqlite if sqlite else trigger.postgres:
                    database.execute_sql(statement)


def _create_deferred_keys(model: Any) -> None:
    for field in model._meta.sorted_fields:
        if isinstance(field, peewee.ForeignKeyField) and field.deferred:
            model._schema.create_foreign_key(field)


def drop_all(database: peewee.Database | None = None) -> None:
    """Drop every table the models declare."""
    database = database or BaseModel._meta.database
    models = find_models()
    with database.bind_ctx(models):
        database.drop_tables(
            list(reversed(models)), cascade=not isinstance(database, peewee.SqliteDatabase)
        )


__all__ = [
    "ALL_MODELS",
    "Account",
    "AdminAuditLog",
    "AdminFlag",
    "AdminImpersonationSession",
    "AdminRole",
    "AdminSession",
    "AdminTenantNote",
    "AdminUser",
    "AdminUserNote",
    "AdminUserRole",
    "BaseModel",
    "Jwks",
    "Notification",
    "NotificationDelivery",
    "NotificationPreference",
    "NotificationTarget",
    "Session",
    "Subscription",
    "SubscriptionEvent",
    "Tenant",
    "TenantActivityDaily",
    "TenantInvite",
    "TenantMember",
    "TimestampTZField",
    "Todo",
    "User",
    "UserActivityDaily",
    "Verification",
    "Waitlist",
    "create_all",
    "drop_all",
    "find_models",
    "new_id",
    "utcnow",
]
