"""The base model and the field types every domain module uses."""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Any

import peewee

from datalayer.connection.database import db

UTC = dt.UTC


def utcnow() -> dt.datetime:
    """Return the current time as an aware UTC datetime."""
    return dt.datetime.now(UTC)


def new_id() -> str:
    """Return a new time-ordered UUID (version 7) as a string."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= (rand >> 68) << 64  # 12 bits rand_a
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    h = f"{value:032x}"  # what str(uuid.UUID(int=value)) gives, without building one
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Dialect(peewee.Node):
    """A piece of DDL written for each backend's dialect."""

    prefix = ""

    def __init__(self, postgres: str, sqlite: str | None = None) -> None:
        self.postgres = postgres
        self.sqlite = postgres if sqlite is None else sqlite

    def __sql__(self, ctx: Any) -> Any:
        # peewee gives no dialect name to the context; its parameter style tells it.
        expr = self.sqlite if ctx.state.param == "?" else self.postgres
        return ctx.literal(self.prefix + expr if expr else "")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.postgres!r}, {self.sqlite!r})"


class ServerDefault(Dialect):
    """A column's server-side ``DEFAULT``."""

    prefix = "DEFAULT "


SQLITE_NOW = "(strftime('%Y-%m-%d %H:%M:%f000+00:00', 'now'))"
NOW = ServerDefault("now()", SQLITE_NOW)
FALSE = ServerDefault("false", "0")
TRUE = ServerDefault("true", "1")
ZERO = ServerDefault("0")
EMPTY_JSON_LIST = ServerDefault("'[]'::jsonb", "'[]'")
# A random (version 4) UUID as text, for ids that other writers leave to the database.
SQLITE_UUID4 = (
    "(lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || "
    "substr(lower(hex(randomblob(2))), 2) || '-' || "
    "substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || "
    "'-' || lower(hex(randomblob(6))))"
)
RANDOM_UUID = ServerDefault("gen_random_uuid()::text", SQLITE_UUID4)


def text_default(value: str) -> ServerDefault:
    """Return a server default for a text literal."""
    return ServerDefault("'" + value.replace("'", "''") + "'")


def int_default(value: int) -> ServerDefault:
    """Return a server default for an integer literal."""
    return ServerDefault(str(int(value)))


class TimestampTZField(peewee.DateTimeField, peewee.FieldDatabaseHook):
    """A timezone-aware timestamp: ``timestamptz`` on PostgreSQL, UTC ISO text on SQLite.

    Naive datetimes are refused: guessing their zone silently shifts data.
    """

    field_type = "TIMESTAMPTZ"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._as_text = False
        super().__init__(*args, **kwargs)

    def _db_hook(self, database: Any) -> None:
        self._as_text = isinstance(database, peewee.SqliteDatabase)

    def db_value(self, value: Any) -> Any:
        if value is None or isinstance(value, peewee.Node):
            return value
        if not self._as_text and isinstance(value, dt.datetime) and value.tzinfo is UTC:
            return value  # the common case on PostgreSQL
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        if not isinstance(value, dt.datetime):
            raise ValueError(f"{self.name}: expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{self.name}: naive datetime {value!r}; give a timezone")
        value = value.astimezone(UTC)
        if self._as_text:
            return value.strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
        return value

    def python_value(self, value: Any) -> Any:
        return to_utc(value)


def to_utc(value: Any) -> dt.datetime | None:
    """Read a stored timestamp (datetime or text) as an aware UTC datetime."""
    if value is None:
        return None
    stamp: dt.datetime = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if stamp.tzinfo is None:
        return stamp.replace(tzinfo=UTC)
    if stamp.utcoffset() == dt.timedelta(0) and stamp.tzinfo is UTC:
        return stamp
    return stamp.astimezone(UTC)


class BaseModel(peewee.Model):
    """Base of every model: bound to ``db``; ``updated_at`` refreshed on every write."""

    class Meta:
        database = db
        legacy_table_names = False

    def save(self, *args: Any, **kwargs: Any) -> Any:
        if "updated_at" in self._meta.fields:
            self.updated_at = utcnow()
        return super().save(*args, **kwargs)

    @classmethod
    def update(cls, __data: Any = None, **update: Any) -> Any:
        field = cls._meta.fields.get("updated_at")
        if field is not None:
            given = dict(__data or {})
            given.update(update)
            # Keys are field names or Field objects (whose == builds an expression).
            if not any(k is field or (isinstance(k, str) and k == "updated_at") for k in given):
                given[field] = utcnow()
            return super().update(given)
        return super().update(__data, **update)


def id_field(server_default: ServerDefault | None = None) -> peewee.TextField:
    """Return the text primary key filled with a UUIDv7 in Python (and, if given, a
    server-side default for writers that leave the id to the database)."""
    constraints: list[peewee.Node] | None = None
    if server_default is not None:
        constraints = [server_default]
    return peewee.TextField(primary_key=True, default=new_id, constraints=constraints)


def created_at() -> TimestampTZField:
    """Return a ``created_at`` column defaulting to now (in Python and on the server)."""
    return TimestampTZField(default=utcnow, constraints=[NOW])


def updated_at() -> TimestampTZField:
    """Return an ``updated_at`` column defaulting to now, refreshed on every write."""
    return TimestampTZField(default=utcnow, constraints=[NOW])


def pairs(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Return an enumeration as peewee ``choices`` (value, label) pairs."""
    return tuple((v, v) for v in values)


def check_constraint(name: str, expression: str) -> peewee.SQL:
    """Return a named table CHECK constraint."""
    return peewee.SQL(f"CONSTRAINT {name} CHECK ({expression})")


def dialect_check(name: str, postgres: str, sqlite: str) -> Dialect:
    """Return a named table CHECK constraint written differently for each backend."""
    return Dialect(f"CONSTRAINT {name} CHECK ({postgres})", f"CONSTRAINT {name} CHECK ({sqlite})")


def json_array_check(name: str, column: str) -> Dialect:
    """Return a CHECK that a JSON column holds an array (not an object, string or number)."""
    return dialect_check(
        name, f"jsonb_typeof({column}) = 'array'", f"json_type({column}) = 'array'"
    )


def slug_check(name: str, column: str, max_length: int = 64) -> Dialect:
    """Return a CHECK that a text column is a lower-case slug: [a-z][a-z0-9_]*, bounded."""
    return dialect_check(
        name,
        f"{column} ~ '^[a-z][a-z0-9_]{{0,{max_length - 1}}}$'",
        f"length({column}) BETWEEN 1 AND {max_length} AND {column} GLOB '[a-z]*' "
        f"AND {column} NOT GLOB '*[^a-z0-9_]*'",
    )


def one_of(column: str, values: tuple[str, ...], *, nullable: bool = False) -> str:
    """Return a CHECK expression limiting ``column`` to ``values``."""
    listed = ", ".join("'" + v + "'" for v in values)
    expr = f"{column} IN ({listed})"
    return f"{column} IS NULL OR {expr}" if nullable else expr
