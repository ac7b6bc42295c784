"""Argument validation: every value a public function takes goes through one of these.

Whatever a caller passes — any type, any value, any size — a check returns the value in
the form the database stores, or raises ``ValidationError`` naming the argument. What
both backends (and Python) can store is the rule, so SQLite refuses what PostgreSQL
refuses:

- **ids**: non-empty text of at most 255 characters;
- **text**: ``str`` only; no NUL (``\\x00``, which PostgreSQL cannot store) and no lone
  surrogate (``"a\\ud800"``, e.g. from ``json.loads('"\\\\ud800"')``: not Unicode, no
  driver can encode it); at most ``TEXT_MAX`` characters, or the column's or the
  argument's own limit (``KEY_MAX`` for an indexed column: PostgreSQL refuses a btree
  entry over 2,704 bytes, SQLite would store it);
- **emails**: NFKC-normalized, trimmed and lower-cased (``email``), so a fullwidth
  look-alike (``ａｄａ@example.com``) is the same address as ``ada@example.com``;
- **integers**: ``int`` only (no ``bool``, no ``float``), within PostgreSQL's ``integer``
  (-2**31 .. 2**31-1) unless a narrower or wider (``bigint``) range is given;
- **numbers** (seconds): ``int`` or ``float``, finite, within the given range;
- **booleans**: ``True`` or ``False`` only (``"false"``, ``0`` and ``None`` are refused);
- **datetimes**: timezone-aware ``datetime`` between ``DATETIME_MIN`` and ``DATETIME_MAX``
  (the years 1000 to 8999, UTC): the library adds durations of up to decades to the
  datetimes it is given (expiries, leases, grace periods), and every result must still
  be a ``datetime`` both databases store;
- **dates**: ``date`` (a ``datetime`` is refused: its time would be dropped);
- **choices**, and iterables of choices (a single string counts as one choice);
- **JSON values**: ``None``, ``bool``, ``int``, finite ``float``, text as above, lists and
  mappings with text keys — at most ``JSON_MAX_DEPTH`` (64) levels deep and
  ``JSON_MAX_BYTES`` (1 MiB) serialized. The walk is iterative: 10,000 levels cost
  nothing but the refusal;
- **cursors** (keyset pages): checked as strictly as arguments (``cursor``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Literal, NoReturn, TypeAlias, cast, overload

from datalayer.errors import ValidationError

__all__ = [
    "DATETIME_MAX",
    "DATETIME_MIN",
    "ID_MAX",
    "INT4_MAX",
    "INT4_MIN",
    "INT8_MAX",
    "INT8_MIN",
    "JSON_MAX_BYTES",
    "JSON_MAX_DEPTH",
    "KEY_MAX",
    "TEXT_MAX",
    "aware_datetime",
    "boolean",
    "choice",
    "choices",
    "cursor",
    "date",
    "email",
    "encode_cursor",
    "fail",
    "ident",
    "integer",
    "json_problem",
    "json_value",
    "number",
    "text",
    "text_problem",
]

INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1
INT8_MIN, INT8_MAX = -(2**63), 2**63 - 1
ID_MAX = 255
DATETIME_MIN = dt.datetime(1000, 1, 1, tzinfo=dt.UTC)
DATETIME_MAX = dt.datetime(8999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)
JSON_MAX_DEPTH = 64
JSON_MAX_BYTES = 1024 * 1024
TEXT_MAX = 65_536  # characters of any text input without a narrower limit
KEY_MAX = 500  # characters of an indexed text column (4 bytes each: under btree's 2,704)
CURSOR_MAX = 1024  # characters; the cursors this library hands out are far shorter

# What json_value returns: a value json.dumps can write (what json_problem accepts).
JsonValue: TypeAlias = (
    "Mapping[str, JsonValue] | list[JsonValue] | tuple[JsonValue, ...] | str | int | float"
    " | bool | None"
)

NUL = "Must not contain NUL (\\x00) characters."
SURROGATE = "Must be valid Unicode text (no lone surrogates such as \\ud800)."


def fail(name: str, message: str) -> NoReturn:
    """Raise the ``ValidationError`` for argument ``name``."""
    raise ValidationError({name: [message]})


# --- text ---------------------------------------------------------------------------------


def text_problem(value: str) -> str | None:
    """Return why ``value`` cannot be stored as text (NUL, lone surrogate), or None."""
    if "\x00" in value:
        return NUL
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return SURROGATE
    return None


@overload
def text(name: str, value: Any, *, max_length: int | None = None, min_length: int = 0, allow_none: Literal[False] = False,) -> str: ...
@overload
def text(name: str, value: Any, *, max_length: int | None = None, min_length: int = 0, allow_none: bool,) -> str | None: ...

def text(
    name: str,
    value: Any,
    *,
    max_length: int | None = None,
    min_length: int = 0,
    allow_none: bool = False,
) -> str | None:
    """Check a text argument; return it."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        fail(name, "Must be a string.")
    problem = text_problem(value)
    if problem:
        fail(name, problem)
    if len(value) < min_length:
        fail(name, f"Must be at least {min_length} characters." if min_length > 1 else "Must not be empty.")
    limit = TEXT_MAX if max_length is None else max_length
    if len(value) > limit:
        fail(name, f"Must be at most {limit} characters.")
    return value


def normalize_email(value: str) -> str:
    """Return the form an email address is stored and compared in: NFKC, trimmed, lower case."""
    return unicodedata.normalize("NFKC", value).strip().lower()


@overload
def email(name: str, value: Any, *, allow_none: Literal[False] = False) -> str: ...
@overload
def email(name: str, value: Any, *, allow_none: bool) -> str | None: ...

def email(name: str, value: Any, *, allow_none: bool = False) -> str | None:
    """Check an email argument (text of at most 255 characters); return it normalized."""
    if value is None and allow_none:
        return None
    return normalize_email(text(name, value, min_length=1, max_length=255))


@overload
def ident(name: str, value: Any, *, allow_none: Literal[False] = False) -> str: ...
@overload
def ident(name: str, value: Any, *, allow_none: bool) -> str | None: ...

def ident(name: str, value: Any, *, allow_none: bool = False) -> str | None:
    """Check an id argument: non-empty text of at most ``ID_MAX`` characters."""
    if value is None and allow_none:
        return None
    if not (isinstance(value, str) and 0 < len(value) <= ID_MAX):
        fail(name, "Must be a non-empty id string.")
    problem = text_problem(value)
    if problem:
        fail(name, problem)
    return value


# --- numbers, booleans --------------------------------------------------------------------


@overload
def integer(name: str, value: Any, *, minimum: int = INT4_MIN, maximum: int = INT4_MAX, allow_none: Literal[False] = False,) -> int: ...
@overload
def integer(name: str, value: Any, *, minimum: int = INT4_MIN, maximum: int = INT4_MAX, allow_none: bool,) -> int | None: ...

def integer(
    name: str,
    value: Any,
    *,
    minimum: int = INT4_MIN,
    maximum: int = INT4_MAX,
    allow_none: bool = False,
) -> int | None:
    """Check an integer argument (no bool, no float) within ``minimum``..``maximum``."""
    if value is None and allow_none:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        fail(name, "Must be an integer.")
    if not minimum <= value <= maximum:
        fail(name, f"Must be between {minimum} and {maximum}.")
    return int(value)


@overload
def number(name: str, value: Any, *, minimum: float, maximum: float, exclusive_minimum: bool = False, allow_none: Literal[False] = False,) -> float: ...
@overload
def number(name: str, value: Any, *, minimum: float, maximum: float, exclusive_minimum: bool = False, allow_none: bool,) -> float | None: ...

def number(
    name: str,
    value: Any,
    *,
    minimum: float,
    maximum: float,
    exclusive_minimum: bool = False,
    allow_none: bool = False,
) -> float | None:
    """Check a finite number (int or float, no bool) within the range; return a float."""
    if value is None and allow_none:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        fail(name, "Must be a number.")
    bound = ">" if exclusive_minimum else ">="
    message = f"Must be a finite number {bound} {minimum:g} and <= {maximum:g}."
    try:
        result = float(value)
    except OverflowError:
        fail(name, message)
    low_ok = result > minimum if exclusive_minimum else result >= minimum
    if not (math.isfinite(result) and low_ok and result <= maximum):
        fail(name, message)
    return result


@overload
def boolean(name: str, value: Any, *, allow_none: Literal[False] = False) -> bool: ...
@overload
def boolean(name: str, value: Any, *, allow_none: bool) -> bool | None: ...

def boolean(name: str, value: Any, *, allow_none: bool = False) -> bool | None:
    """Check a boolean argument: ``True`` or ``False`` only."""
    if value is None and allow_none:
        return None
    if not isinstance(value, bool):
        fail(name, "Must be true or false (a bool).")
    return value


# --- dates and times ----------------------------------------------------------------------


def datetime_problem(value: dt.datetime) -> tuple[dt.datetime | None, str | None]:
    """Return ``value`` in UTC, or why it is refused (naive, out of range)."""
    try:
        offset = value.utcoffset()
    except (ValueError, TypeError, OverflowError):  # a tzinfo that misbehaves
        return None, "Must have a valid timezone."
    if offset is None:
        return None, "Must be a timezone-aware datetime."
    try:
        utc = value.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not DATETIME_MIN <= utc <= DATETIME_MAX:
        return None, (
            f"Must be between {DATETIME_MIN.isoformat()} and {DATETIME_MAX.isoformat()} (UTC)."
        )
    return utc, None


@overload
def aware_datetime(name: str, value: Any, *, allow_none: Literal[False] = False) -> dt.datetime: ...
@overload
def aware_datetime(name: str, value: Any, *, allow_none: bool) -> dt.datetime | None: ...

def aware_datetime(name: str, value: Any, *, allow_none: bool = False) -> dt.datetime | None:
    """Check a timezone-aware datetime within the supported range; return it in UTC."""
    if value is None and allow_none:
        return None
    if not isinstance(value, dt.datetime):
        fail(name, "Must be a timezone-aware datetime.")
    utc, problem = datetime_problem(value)
    if problem:
        fail(name, problem)
    return utc


@overload
def date(name: str, value: Any, *, allow_none: Literal[False] = False) -> dt.date: ...
@overload
def date(name: str, value: Any, *, allow_none: bool) -> dt.date | None: ...

def date(name: str, value: Any, *, allow_none: bool = False) -> dt.date | None:
    """Check a calendar date (a ``datetime`` is refused: its time would be dropped)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        fail(name, "Must be a date.")
    return value


# --- choices ------------------------------------------------------------------------------


@overload
def choice(name: str, value: Any, allowed: Collection[str], *, allow_none: Literal[False] = False) -> str: ...
@overload
def choice(name: str, value: Any, allowed: Collection[str], *, allow_none: bool) -> str | None: ...

def choice(name: str, value: Any, allowed: Collection[str], *, allow_none: bool = False) -> str | None:
    """Check that ``value`` is one of ``allowed``."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or value not in allowed:
        fail(name, f"Must be one of: {', '.join(sorted(allowed))}.")
    return value


@overload
def choices(name: str, value: Any, allowed: Collection[str], *, allow_empty: bool = False, allow_none: Literal[False] = False,) -> list[str]: ...
@overload
def choices(name: str, value: Any, allowed: Collection[str], *, allow_empty: bool = False, allow_none: bool,) -> list[str] | None: ...

def choices(
    name: str,
    value: Any,
    allowed: Collection[str],
    *,
    allow_empty: bool = False,
    allow_none: bool = False,
) -> list[str] | None:
    """Check an iterable of choices (one string counts as one choice); return a list."""
    if value is None and allow_none:
        return None
    kind = "list" if allow_empty else "non-empty list"
    message = f"Must be a {kind} of: {', '.join(sorted(allowed))}."
    if isinstance(value, str):
        value = [value]
    if isinstance(value, Mapping | bytes | bytearray) or not isinstance(value, Iterable):
        fail(name, message)
    listed: list[str] = []
    for item in value:
        if not isinstance(item, str) or item not in allowed or len(listed) > len(allowed) * 4:
            fail(name, message)
        listed.append(item)
    if not listed and not allow_empty:
        fail(name, message)
    return listed


# --- JSON ---------------------------------------------------------------------------------


def json_problem(value: Any) -> str | None:
    """Return why ``value`` is not a storable JSON value, or None.

    Iterative (no recursion, whatever the nesting) and bounded: it stops at the first
    level past ``JSON_MAX_DEPTH`` and once ``JSON_MAX_BYTES`` worth of items are seen.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    budget = JSON_MAX_BYTES  # every item costs at least one byte once serialized
    while stack:
        item, depth = stack.pop()
        budget -= 1
        if budget < 0:
            return f"Must be at most {JSON_MAX_BYTES} bytes as JSON."
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, int):
            if not -(10**4000) < item < 10**4000:  # Python refuses to print longer ints
                return "Numbers must have at most 4000 digits."
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return "Must not contain NaN or infinite numbers."
            continue
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return problem
            budget -= len(item)
            continue
        if isinstance(item, list | tuple | Mapping):
            if depth >= JSON_MAX_DEPTH:
                return f"Must be nested at most {JSON_MAX_DEPTH} levels deep."
            if isinstance(item, Mapping):
                for key, member in item.items():
                    if not isinstance(key, str):
                        return "Object keys must be strings."
                    problem = text_problem(key)
                    if problem:
                        return problem
                    budget -= len(key)
                    stack.append((member, depth + 1))
            else:
                stack.extend((member, depth + 1) for member in item)
            continue
        return f"Not a JSON value: {type(item).__name__}."
    try:
        size = len(json.dumps(value, allow_nan=False, separators=(",", ":")).encode("utf-8"))
    except (TypeError, ValueError, RecursionError):
        return "Not a valid JSON value."
    if size > JSON_MAX_BYTES:
        return f"Must be at most {JSON_MAX_BYTES} bytes as JSON."
    return None


def json_value(name: str, value: Any, *, allow_none: bool = True) -> JsonValue:
    """Check a JSON value (depth, size, text, finite numbers); return it."""
    if value is None:
        if allow_none:
            return None
        fail(name, "Must not be null.")
    problem = json_problem(value)
    if problem:
        fail(name, problem)
    return cast(JsonValue, value)  # json_problem has checked every member


# --- cursors ------------------------------------------------------------------------------


def encode_cursor(ts: dt.datetime | None, row_id: str) -> str:
    """Return the opaque cursor for the keyset position (ts, row_id)."""
    raw = json.dumps([ts.isoformat() if ts else None, row_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


_B64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def cursor(value: Any, name: str = "cursor") -> tuple[dt.datetime, str]:
    """Decode a cursor made by ``encode_cursor``; anything else is a ValidationError."""
    message = "Not a valid cursor (pass the next_cursor of the previous page as it is)."
    if not isinstance(value, str) or not 0 < len(value) <= CURSOR_MAX or not set(value) <= _B64:
        fail(name, message)
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        if not raw.startswith(b'["') or not raw.endswith(b'"]'):  # ["<timestamp>","<id>"]
            fail(name, message)
        decoded = json.loads(raw)  # at most 768 bytes: shallow enough for the parser
    except (ValueError, TypeError, binascii.Error, RecursionError):
        fail(name, message)
    if not (isinstance(decoded, list) and len(decoded) == 2):
        fail(name, message)
    ts_text, row_id = decoded
    if not isinstance(ts_text, str) or not isinstance(row_id, str):
        fail(name, message)
    if text_problem(ts_text) or not 0 < len(row_id) <= ID_MAX or text_problem(row_id):
        fail(name, message)
    try:
        ts = dt.datetime.fromisoformat(ts_text)
    except ValueError:
        fail(name, message)
    utc, problem = datetime_problem(ts)
    if problem or utc is None:
        fail(name, message)
    return utc, row_id
