"""Secrets out of sight: what is bound to a secret column never reaches a log or a message.

A column is secret when its table's select schema keeps it from every DTO
(``model_schema(load_only=...)`` or ``model_schema(secret=...)``, see
``datalayer.schemas.base``): session and admin-session tokens, password hashes, the
OAuth tokens and password of an account, JWKS private keys, verification values,
invite token hashes. ``mark_secret`` wraps the column's ``db_value`` so that every value
bound to it, in any statement (insert, update, ``WHERE token = …``), is a ``Secret``:
a ``str`` the drivers send as they send any text, which the SQL log prints as ``***``
(and whose ``repr`` is ``'***'`` too, for any other logger that prints parameters).

Database error messages quote row values (``DETAIL: Key (token)=(…) already exists``,
``Failing row contains (…)``): ``scrub`` masks them, and ``scrub_exception`` rewrites a
driver exception in place so that a traceback of the chained cause carries no secret
either.
"""

from __future__ import annotations

import re
from typing import Any

import peewee

__all__ = [
    "Secret",
    "mark_secret",
    "mask_params",
    "redact_url",
    "scrub",
    "scrub_exception",
    "secret_columns",
]

MASK = "***"
# Longer parameter values are cut in the log (a 1 MiB JSON document is not a log line).
LOG_VALUE_MAX = 200


class Secret(str):
    """A value bound to a secret column."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(MASK)


_columns: set[tuple[str, str]] = set()
_names: set[str] = set()


def mark_secret(field: peewee.Field) -> None:
    """Treat ``field``'s column as secret: every value bound to it becomes a ``Secret``."""
    if getattr(field, "_datalayer_secret", False):
        return
    convert: Any = field.db_value  # peewee's stubs leave db_value untyped

    def db_value(value: Any) -> Any:
        value = convert(value)
        return Secret(value) if isinstance(value, str) and not isinstance(value, Secret) else value

    field.db_value = db_value  # type: ignore[method-assign]  # this field instance only
    field._datalayer_secret = True  # type: ignore[attr-defined]  # a marker on the field
    _columns.add((field.model._meta.table_name, field.column_name))
    _names.add(field.column_name)


def secret_columns() -> set[tuple[str, str]]:
    """Return the (table, column) pairs that hold secrets."""
    return set(_columns)


def _short(value: Any) -> Any:
    if isinstance(value, Secret):
        return _Masked()
    if isinstance(value, str | bytes) and len(value) > LOG_VALUE_MAX:
        return _Cut(value)
    return value


class _Masked:
    def __repr__(self) -> str:
        return MASK


class _Cut:
    def __init__(self, value: str | bytes) -> None:
        self.text = repr(value[:LOG_VALUE_MAX])
        self.size = len(value)

    def __repr__(self) -> str:
        return f"{self.text}...({self.size} long)"


def mask_params(params: Any) -> str:
    """Render a statement's parameters for the log: secrets as ``***``, long values cut."""
    if params is None:
        return ""
    if isinstance(params, dict):
        return repr({k: _short(v) for k, v in params.items()})
    try:
        return repr([_short(v) for v in params])
    except TypeError:
        return repr(params)


# DETAIL:  Key (token)=(abc) already exists.   /   Key (a, b)=(x, y) is not present ...
_KEY = re.compile(r"Key \((?P<cols>[^)]*)\)=\((?P<vals>.*)\)(?P<rest>[^()]*)$", re.M)
_FAILING_ROW = re.compile(r"(Failing row contains )\(.*\)", re.M)


def scrub(text: str) -> str:
    """Return a database message with the values of secret columns (and whole failing rows,
    whose columns it does not name) replaced by ``***``."""
    if "Key (" not in text and "Failing row" not in text:
        return text

    def key(match: re.Match[str]) -> str:
        cols = {c.strip().strip('"') for c in match.group("cols").split(",")}
        if not cols & _names:
            return match.group(0)
        return f"Key ({match.group('cols')})=({MASK}){match.group('rest')}"

    text = _KEY.sub(key, text)
    return _FAILING_ROW.sub(rf"\1({MASK})", text)


def scrub_exception(exc: BaseException) -> None:
    """Scrub ``exc``, the driver exception it wraps and its context, in place (their
    messages: what a traceback prints; psycopg2's read-only ``pgerror`` and ``diag`` keep
    the original for code that asks for it)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        args = getattr(current, "args", ())
        if any(isinstance(a, str) and ("Key (" in a or "Failing row" in a) for a in args):
            current.args = tuple(scrub(a) if isinstance(a, str) else a for a in args)
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]


# ``password=...`` as a URL query parameter (libpq takes one) or in a key=value DSN.
_PASSWORD_PARAM = re.compile(r"((?:^|[?&\s])password\s*=\s*)('(?:[^'\\]|\\.)*'|[^&#\s]*)", re.I)


def redact_url(url: str) -> str:
    """Return a database URL (or DSN) with its password shown as ``***``.

    Reads the user part as libpq and urllib do (the last ``@`` before the hosts ends it,
    the first ``:`` in it starts the password), so a multi-host URL
    (``postgresql://u:pw@h1:5432,h2:5432/db``), which urllib cannot parse, is masked too.
    """
    scheme, sep, rest = url.partition("://")
    if sep:
        end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
        userinfo, at, hosts = rest[:end].rpartition("@")
        if at and ":" in userinfo:
            user = userinfo.partition(":")[0]
            url = f"{scheme}://{user}:{MASK}@{hosts}{rest[end:]}"
    return _PASSWORD_PARAM.sub(lambda m: m.group(1) + MASK, url)
