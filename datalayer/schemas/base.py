"""Model → marshmallow schema converter, strict field types, and compiled dumpers.

``model_schema`` derives a schema from a peewee model so that a column added to a
table can never be missing from its DTO (the drizzle-zod property). DTO keys are the
database column names (``user_id``, not peewee's ``user``).

Every input PostgreSQL would refuse, or store differently from what was given, is
refused here first: NUL characters in text, integers outside int4, naive datetimes,
non-JSON values, overlong strings, values outside an enumeration.
"""

from __future__ import annotations

import copy
import datetime as dt
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeGuard, TypeVar, overload

import marshmallow
import peewee
from marshmallow import fields, validate

from datalayer import arguments
from datalayer.arguments import INT4_MAX, INT4_MIN
from datalayer.errors import ValidationError
from datalayer.models.base import TimestampTZField, to_utc, utcnow
from datalayer.redact import mark_secret

EMAIL_MAX = 255


class Text(fields.String):
    """A string both databases can store: no NUL, no lone surrogate (``arguments.text``)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        result = super()._deserialize(value, attr, data, **kwargs)
        problem = arguments.text_problem(result)
        if problem:
            raise marshmallow.ValidationError(problem)
        if len(result) > arguments.TEXT_MAX:  # every text has a ceiling, whatever its validators
            raise marshmallow.ValidationError(f"Must be at most {arguments.TEXT_MAX} characters.")
        return result


class Email(Text):
    """An email address, NFKC-normalized, trimmed and lower-cased (``arguments.normalize_email``):
    look-alikes such as ``ａｄａ@example.com`` are the same address as ``ada@example.com``."""

    default_error_messages = {"invalid": "Not a valid email address."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators.insert(0, validate.Length(max=EMAIL_MAX))
        self.validators.insert(0, validate.Email(error=str(self.error_messages["invalid"])))

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        return arguments.normalize_email(super()._deserialize(value, attr, data, **kwargs))


class Url(Text):
    """An absolute http(s) URL."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators.insert(0, validate.URL(schemes={"http", "https"}, require_tld=False))


class Int4(fields.Integer):
    """An integer that fits PostgreSQL's ``integer`` (no bools, no floats)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)
        self.validators.insert(0, validate.Range(min=INT4_MIN, max=INT4_MAX))

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """A boolean: ``True`` or ``False`` only (no 0/1/"yes")."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class AwareDateTime(fields.AwareDateTime):
    """A timezone-aware datetime (naive ones are refused), stored and dumped in UTC."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="iso", **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dt.datetime:
        try:
            result = super()._deserialize(value, attr, data, **kwargs)
        except (OverflowError, ValueError, TypeError):  # e.g. "0001-01-01T00:00:00+01:00"
            raise self.make_error("invalid", input=value, obj_type="datetime") from None
        utc, problem = arguments.datetime_problem(result)
        if problem or utc is None:  # utc is None exactly when there is a problem
            raise marshmallow.ValidationError(problem or "Must be a timezone-aware datetime.")
        return utc

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        utc = to_utc(value)
        return None if utc is None else utc.isoformat()


class Date(fields.Date):
    """A calendar date (a datetime is refused: its time would be silently dropped)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dt.date:
        if isinstance(value, dt.datetime):
            raise self.make_error("invalid", input=value, obj_type="date")
        return super()._deserialize(value, attr, data, **kwargs)


class Json(fields.Raw):
    """A JSON value both databases store as given: no NaN, no NUL, no lone surrogate, at
    most ``arguments.JSON_MAX_DEPTH`` levels and ``arguments.JSON_MAX_BYTES`` (``arguments.json_problem``)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        problem = arguments.json_problem(value)
        if problem:
            raise marshmallow.ValidationError(problem)
        return value


class StringList(fields.List[Any]):
    """A JSON list of strings."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(Text(validate=validate.Length(min=1, max=200)), **kwargs)


def _choices(field: peewee.Field) -> tuple[str, ...] | None:
    if not field.choices:
        return None
    return tuple(c[0] if isinstance(c, tuple) else c for c in field.choices)


def field_for(field: peewee.Field, **kwargs: Any) -> fields.Field[Any]:
    """Return the marshmallow field matching a peewee field's type and constraints."""
    validators = list(kwargs.pop("validate", None) or ())
    choices = _choices(field)
    if choices:
        validators.append(validate.OneOf(choices))
    if isinstance(field, peewee.ForeignKeyField):
        return field_for(field.rel_field, validate=validators, **kwargs)
    if isinstance(field, TimestampTZField):
        return AwareDateTime(validate=validators, **kwargs)
    if isinstance(field, peewee.DateField):
        return Date(validate=validators, **kwargs)
    if isinstance(field, peewee.BooleanField):
        return StrictBoolean(validate=validators, **kwargs)
    if isinstance(field, peewee.IntegerField):
        return Int4(validate=validators, **kwargs)
    if isinstance(field, peewee.JSONField):
        return Json(validate=validators, **kwargs)
    if isinstance(field, peewee.CharField):
        validators.append(validate.Length(max=field.max_length))
    elif is_indexed(field):
        validators.append(validate.Length(max=arguments.KEY_MAX))
    return Text(validate=validators, **kwargs)


def is_indexed(field: peewee.Field) -> bool:
    """Tell whether a column is in an index (its own, or one of its model's)."""
    if field.index or field.unique:
        return True
    for index in field.model._meta.indexes:
        columns = index[0] if isinstance(index, tuple) else getattr(index, "_expressions", ())
        # (a Field's == builds an SQL expression, always true: compare names and identity)
        if any(c is field or (isinstance(c, str) and c == field.name) for c in columns):
            return True
    return False


# Columns the database or the library fills: never taken from a caller.
SYSTEM_COLUMNS = frozenset({"id", "created_at", "updated_at"})


def model_schema(
    model: type[peewee.Model],
    *,
    name: str | None = None,
    exclude: Iterable[str] = (),
    load_only: Iterable[str] = (),
    dump_only: Iterable[str] = (),
    secret: Iterable[str] = (),
    overrides: Mapping[str, fields.Field[Any]] | None = None,
) -> type[marshmallow.Schema]:
    """Derive a select schema (every column, keyed by column name) from a model.

    ``exclude`` drops columns, ``load_only`` keeps a column for loading but never dumps
    it (a secret a caller gives: a token, a password hash), ``secret`` drops a column
    that holds a secret the library writes itself (an invite's token hash),
    ``overrides`` replaces derived fields. Every ``load_only`` and ``secret`` column is
    masked in the SQL log and in error messages (``datalayer.redact``).
    """
    exclude, load_only, secret = set(exclude), set(load_only), set(secret)
    stale = sorted((load_only | secret) - set(model._meta.columns))
    if stale:  # a column renamed or removed: say so instead of a KeyError at import
        warnings.warn(
            f"{name or model.__name__ + 'Schema'} names {', '.join(map(repr, stale))}, not a "
            f"column of {model.__name__} (renamed or removed?): left out; update its "
            "model_schema() call in datalayer/schemas/",
            SchemaDriftWarning,
            stacklevel=2,
        )
        load_only, secret = load_only - set(stale), secret - set(stale)
    for column in load_only | secret:
        mark_secret(model._meta.columns[column])
    exclude |= secret - load_only
    dump_only = set(dump_only) | (SYSTEM_COLUMNS & set(model._meta.columns))
    overrides = dict(overrides or {})
    attrs: dict[str, Any] = {}
    for pw_field in model._meta.sorted_fields:
        column = pw_field.column_name
        if column in exclude:
            continue
        if column in overrides:
            attrs[column] = overrides.pop(column)
            continue
        required = not pw_field.null and pw_field.default is None and column not in dump_only
        attrs[column] = field_for(
            pw_field,
            required=required,
            allow_none=pw_field.null,
            dump_only=column in dump_only,
            load_only=column in load_only,
        )
    attrs.update(overrides)  # extra fields that are not columns
    return marshmallow.Schema.from_dict(attrs, name=name or f"{model.__name__}Schema")


def writable_schema(
    select: type[marshmallow.Schema] | marshmallow.Schema,
    *,
    name: str,
    only: Sequence[str] | None = None,
    exclude: Iterable[str] = (),
    required: Iterable[str] = (),
    overrides: Mapping[str, fields.Field[Any]] | None = None,
) -> type[marshmallow.Schema]:
    """Build a create/update schema from the fields a select schema loads.

    By default every loadable field: every column of the model but the server-owned ones
    (the select schema's ``dump_only``: ids, timestamps, ownership ids), minus
    ``exclude`` — so a column added to a model is writable without another edit. ``only``
    lists the fields instead. Fields are copied (same types and validation); only those in
    ``required`` are required; ``overrides`` adds or replaces fields. A name that matches
    no field (a column renamed or removed) is left out with a ``SchemaDriftWarning``.
    """
    declared: dict[str, fields.Field[Any]] = select._declared_fields
    loadable = [column for column, field in declared.items() if not field.dump_only]
    names = list(only) if only is not None else loadable
    excluded, required = set(exclude), set(required)
    stale = sorted({*names, *excluded, *required} - set(declared) - set(overrides or {}))
    if stale:
        warnings.warn(
            f"{name} names {', '.join(map(repr, stale))}, not a field of "
            f"{getattr(select, '__name__', type(select).__name__)} (a column renamed or "
            "removed?): left out; update its writable_schema() call in datalayer/schemas/",
            SchemaDriftWarning,
            stacklevel=2,
        )
    attrs: dict[str, Any] = {
        column: _clone(declared[column], required=column in required)
        for column in names
        if column in declared and column not in excluded
    }
    attrs.update(overrides or {})
    return marshmallow.Schema.from_dict(attrs, name=name)


def _clone(field: fields.Field[Any], *, required: bool) -> fields.Field[Any]:
    """Copy a field with a new ``required`` flag and no dump/load restriction."""
    # Shallow: the copy is a class-level template like the original (marshmallow deep-copies
    # the declared fields for each schema instance), and only its own flags change.
    clone = copy.copy(field)
    clone.required = required
    clone.dump_only = False
    clone.load_only = False
    if not required:
        clone.load_default = marshmallow.missing
    return clone


def load(schema: marshmallow.Schema, data: Any, *, partial: bool = False) -> dict[str, Any]:
    """Validate ``data`` with ``schema``; raise ``datalayer.ValidationError`` naming the fields."""
    if not isinstance(data, Mapping):
        raise ValidationError({"_schema": ["Expected a mapping of field names to values."]})
    bad_keys = [k for k in data if not isinstance(k, str) or arguments.text_problem(k)]
    if bad_keys:
        raise ValidationError({"_schema": ["Field names must be valid text."]})
    try:
        return schema.load(data, partial=partial)  # type: ignore[no-any-return]  # marshmallow types load() as Any
    except marshmallow.ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise ValidationError(messages) from None


T = TypeVar("T")


@overload
def require(name: str, value: object, check: Callable[[Any], TypeGuard[T]], message: str) -> T: ...
@overload
def require(name: str, value: object, check: Callable[[Any], bool], message: str) -> object: ...
def require(name: str, value: Any, check: Callable[[Any], bool], message: str) -> Any:
    """Validate one scalar argument (an id, a limit); raise ValidationError naming it.

    Its type is the ``TypeGuard`` type of a ``check`` declared as one (``def is_token(v:
    object) -> TypeGuard[str]``), else ``object``.

    A ``check`` that raises on a value it did not expect refuses it too, and text that
    passes it must still be storable (no NUL, no lone surrogate: ``arguments.text_problem``).
    """
    try:
        ok = check(value)
    except (TypeError, ValueError, OverflowError, AttributeError, RecursionError):
        ok = False
    if not ok:
        raise ValidationError({name: [message]})
    if isinstance(value, str):  # whatever else the check looked at: storable text only
        problem = arguments.text_problem(value)
        if problem:
            raise ValidationError({name: [problem]})
    return value


def check_id(name: str, value: Any) -> str:
    """Validate an id argument (``arguments.ident``)."""
    return arguments.ident(name, value)


def check_limit(limit: Any, *, maximum: int = 1000) -> int:
    """Validate a page size."""
    return arguments.integer("limit", limit, minimum=1, maximum=maximum)


def check_aware(name: str, value: Any) -> dt.datetime:
    """Validate a timezone-aware datetime argument; return it in UTC (``arguments.aware_datetime``)."""
    return arguments.aware_datetime(name, value)


def check_now(now: Any) -> dt.datetime:
    """Validate an optional ``now`` argument (aware, in UTC); the current time when None."""
    return utcnow() if now is None else check_aware("now", now)


# The compiled dumper lives in its own module; importable from here as before.
from datalayer.schemas.dumper import Dumper as Dumper  # noqa: E402
from datalayer.schemas.dumper import SchemaDriftWarning as SchemaDriftWarning  # noqa: E402
