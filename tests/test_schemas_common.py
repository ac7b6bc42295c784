"""Tests over every schema, whatever domain defines it.

Everything is discovered from ``datalayer.schemas.__all__`` and ``ALL_MODELS``, so a
schema added by any domain is covered as soon as it is exported:

- select schemas (``<Model>Schema``) dump every column except the deliberate secrets;
- each ``XxxDTO`` has exactly its ``XxxSchema``'s dumped keys, with matching types;
- dumps are JSON-ready (read back from the database, on both backends);
- the compiled ``Dumper`` equals ``schema.dump`` (property-based);
- write schemas (``Create…``, ``Update…``, ``Upsert…``, ``Append…``) round-trip any
  valid value and refuse bad input naming the field.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any

import marshmallow
import peewee
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from marshmallow import fields, validate

import datalayer.schemas as schemas
from datalayer import ValidationError
from datalayer.models import ALL_MODELS, Waitlist, new_id
from datalayer.schemas.base import INT4_MAX, INT4_MIN, Dumper, load, model_schema

# Columns a select schema must never dump (table -> columns). They may stay loadable.
SECRET_COLUMNS: dict[str, frozenset[str]] = {
    "account": frozenset({"password", "access_token", "refresh_token", "id_token"}),
    "jwks": frozenset({"private_key"}),
    "session": frozenset({"token"}),
    "admin_sessions": frozenset({"token"}),
    "tenant_invites": frozenset({"token_hash"}),
    "admin_users": frozenset({"password_hash"}),
    "verification": frozenset({"value"}),
}
WRITE_PREFIXES = ("Create", "Update", "Upsert", "Append")

PUBLIC = {name: getattr(schemas, name) for name in schemas.__all__}
MODELS = {model.__name__: model for model in ALL_MODELS}
SCHEMAS = {
    name: obj
    for name, obj in PUBLIC.items()
    if isinstance(obj, type) and issubclass(obj, marshmallow.Schema)
}
SELECT = {name: MODELS[name] for name in MODELS if f"{name}Schema" in SCHEMAS}
WRITE = sorted(name for name in SCHEMAS if name.startswith(WRITE_PREFIXES))
DTOS = sorted(name for name in PUBLIC if name.endswith("DTO") and f"{name[:-3]}Schema" in SCHEMAS)


def model_of(write_schema: str) -> type[peewee.Model] | None:
    """Return the model a write schema writes (CreateTodoSchema -> Todo), if any."""
    base = write_schema.removesuffix("Schema")
    for prefix in WRITE_PREFIXES:
        base = base.removeprefix(prefix)
    return MODELS.get(base)


fast = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- columns, secrets, DTOs ------------------------------------------------------------


def undumped_columns(model: type[peewee.Model], schema: marshmallow.Schema) -> set[str]:
    """Return the model's columns its select schema does not dump, secrets aside."""
    secrets = SECRET_COLUMNS.get(model._meta.table_name, frozenset())
    return set(model._meta.columns) - set(schema.dump_fields) - secrets


def test_the_registries_are_discovered() -> None:
    assert {"Todo", "Waitlist", "UserActivityDaily"} <= set(SELECT)
    assert {"CreateTodoSchema", "CreateWaitlistSchema", "UpdateTodoSchema"} <= set(WRITE)
    assert {"TodoDTO", "WaitlistDTO", "UserActivityDailyDTO"} <= set(DTOS)


def test_the_secret_exclusions_name_real_columns() -> None:
    tables = {m._meta.table_name: m for m in ALL_MODELS}
    for table, columns in SECRET_COLUMNS.items():
        assert table in tables, table
        assert columns <= set(tables[table]._meta.columns), (table, columns)


@pytest.mark.parametrize("name", sorted(SELECT))
def test_select_schema_dumps_every_column_but_no_secret(name: str) -> None:
    model, schema = SELECT[name], SCHEMAS[f"{name}Schema"]()
    assert undumped_columns(model, schema) == set()
    secrets = SECRET_COLUMNS.get(model._meta.table_name, frozenset())
    assert not secrets & set(schema.dump_fields)


def test_a_column_added_without_its_dto_is_reported() -> None:
    schema = SCHEMAS["WaitlistSchema"]()
    assert undumped_columns(Waitlist, schema) == set()
    Waitlist._meta.add_field("referrer", peewee.TextField(null=True))
    try:
        assert undumped_columns(Waitlist, schema) == {"referrer"}
        # A schema derived again from the model picks the column up (the drizzle-zod property).
        assert "referrer" in model_schema(Waitlist)().dump_fields
    finally:
        Waitlist._meta.remove_field("referrer")
    assert "referrer" not in Waitlist._meta.columns
    assert undumped_columns(Waitlist, schema) == set()


@pytest.mark.parametrize("name", sorted(SELECT))
def test_every_select_schema_has_its_dto(name: str) -> None:
    assert f"{name}DTO" in PUBLIC


# The type a DTO must declare for what a field dumps (None: anything, e.g. JSON).
def dumped_type(field: fields.Field) -> type | None:
    for kind, python in (
        (fields.String, str),
        (fields.DateTime, str),
        (fields.Date, str),
        (fields.Boolean, bool),
        (fields.Integer, int),
        (fields.List, list),
    ):
        if isinstance(field, kind):
            return python
    return None


def _members(hint: Any) -> set[Any]:
    """The run-time types a hint allows: an id type is its ``str``, a Literal its values' type."""
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) else ()
    if typing.get_origin(hint) is typing.Union:
        args = typing.get_args(hint)
    return {_runtime(m) for m in (args or (hint,))}


def _runtime(hint: Any) -> Any:
    while hasattr(hint, "__supertype__"):  # typing.NewType: UserId -> str
        hint = hint.__supertype__
    if typing.get_origin(hint) is typing.Literal:
        return type(typing.get_args(hint)[0])
    return typing.get_origin(hint) or hint


def key_mismatch(typed: str, keys: set[str], schema: str, fields: set[str]) -> str:
    """Name the keys a TypedDict and its schema disagree on ('' when they agree)."""
    problems = [f"{typed} lacks {key!r}, which {schema} has" for key in sorted(fields - keys)]
    problems += [f"{typed} has {key!r}, which {schema} lacks" for key in sorted(keys - fields)]
    return "; ".join(problems)


def test_a_dto_and_its_schema_disagreeing_is_reported_by_key() -> None:
    assert key_mismatch("TodoDTO", {"id", "titel"}, "TodoSchema", {"id", "title"}) == (
        "TodoDTO lacks 'title', which TodoSchema has; TodoDTO has 'titel', which TodoSchema lacks"
    )


@pytest.mark.parametrize("name", DTOS)
def test_dto_keys_and_types_match_the_schema(name: str) -> None:
    dto, schema = PUBLIC[name], SCHEMAS[f"{name[:-3]}Schema"]()
    keys = set(dto.__required_keys__) | set(dto.__optional_keys__)
    mismatch = key_mismatch(name, keys, f"{name[:-3]}Schema", set(schema.dump_fields))
    assert not mismatch, mismatch
    hints = typing.get_type_hints(dto)
    for key, field in schema.dump_fields.items():
        members = _members(hints[key])
        if typing.Any in members:
            continue
        assert (type(None) in members) == field.allow_none, (key, hints[key])
        expected = dumped_type(field)
        if expected is not None:
            assert expected in members, (key, hints[key])


# --- JSON-ready dumps, read back from the database ---------------------------------------

AWARE = dt.datetime(
    2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))
)
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?\+00:00$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
JSON_SAMPLE = {"key": ["value", 1, 2.5, True, None]}
JSON_LIST_SAMPLE = ["value", "other"]  # the list columns (the database checks they are arrays)
# Rows whose CHECKs tie columns together: make a sample coherent (table -> fix-up).
COHERENT: dict[str, Callable[[dict[str, Any]], None]] = {
    # a custom flag has a label, the others none
    "admin_flags": lambda data: data.update(
        flag_type="custom" if data["custom_label"] is not None else "vip"),
    # an ended impersonation has an end reason
    "admin_impersonation_sessions": lambda data: data.update(
        end_reason=None if data["ended_at"] is None else "manual"),
}


def _sample(field: peewee.Field, tag: str, parents: dict[Any, Any]) -> Any:
    if isinstance(field, peewee.ForeignKeyField):
        return parents.get(field.rel_model)
    if field.choices:
        first = field.choices[0]
        return first[0] if isinstance(first, tuple) else first
    if field.primary_key:
        return new_id() if field.default else f"sample_{tag}"
    for kind, value in (
        (peewee.DateTimeField, AWARE),
        (peewee.DateField, dt.date(2024, 2, 29)),
        (peewee.BooleanField, True),
        (peewee.IntegerField, 7),
        (peewee.JSONField, JSON_LIST_SAMPLE if field.default is list else JSON_SAMPLE),
    ):
        if isinstance(field, kind):
            return value
    return f"sample-{tag}@example.com"


def insert_sample(model: type[peewee.Model], tag: str, *, sparse: bool, parents: dict) -> Any:
    """Insert a row of ``model`` (and its parents); nullable columns are None when sparse."""
    parents.setdefault(model, None)  # in progress: a cycle back here gets NULL
    for field in model._meta.sorted_fields:
        rel = getattr(field, "rel_model", None)
        if rel is not None and rel not in parents and not (sparse and field.null):
            insert_sample(rel, tag, sparse=sparse, parents=parents)
    data = {
        f.name: None if (sparse and f.null) else _sample(f, tag, parents)
        for f in model._meta.sorted_fields
    }
    COHERENT.get(model._meta.table_name, lambda data: None)(data)
    model.insert(**data).execute()
    pk = model._meta.primary_key
    if not isinstance(pk, peewee.CompositeKey):
        parents[model] = data[pk.name]
    return data


def _where(model: type[peewee.Model], data: dict[str, Any]) -> Any:
    pk = model._meta.primary_key
    names = pk.field_names if isinstance(pk, peewee.CompositeKey) else (pk.name,)
    expr = None
    for name in names:
        term = model._meta.fields[name] == data[name]
        expr = term if expr is None else expr & term
    return expr


@pytest.mark.usefixtures("txn")
@pytest.mark.parametrize("sparse", [False, True], ids=["full", "sparse"])
@pytest.mark.parametrize("name", sorted(SELECT))
def test_dumps_are_json_ready(name: str, sparse: bool) -> None:
    model, schema = SELECT[name], SCHEMAS[f"{name}Schema"]()
    dumper = Dumper(schema, model)
    data = insert_sample(model, new_id()[-12:], sparse=sparse, parents={})
    dto = dumper.one(dumper.select().where(_where(model, data)))
    assert dto is not None
    assert json.loads(json.dumps(dto, allow_nan=False)) == dto
    for key, field in schema.dump_fields.items():
        value = dto[key]
        if value is None:
            assert field.allow_none, key
        elif isinstance(field, fields.DateTime):
            assert ISO_UTC.match(value), (key, value)
            assert dt.datetime.fromisoformat(value) == AWARE, key
        elif isinstance(field, fields.Date):
            assert ISO_DATE.match(value) and value == "2024-02-29", (key, value)


# --- strategies of valid values, generated from the fields' own validators --------------

TEXT = st.characters(exclude_characters="\x00", exclude_categories=("Cs",))
JSON_TEXT = st.text(TEXT, max_size=10)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | JSON_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(JSON_TEXT, inner, max_size=3),
    max_leaves=8,
)
WORDS = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
TLDS = st.sampled_from(["com", "org", "io"])
EMAILS = st.builds("{}@{}.{}".format, WORDS, WORDS, TLDS)
URLS = st.builds(
    "{}://{}.{}/{}".format, st.sampled_from(["http", "https"]), WORDS, TLDS, WORDS | st.just("")
)
OFFSETS = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
    lambda m: dt.timezone(dt.timedelta(minutes=m))
)
AWARE_DATETIMES = st.datetimes(
    min_value=dt.datetime(1900, 1, 1),
    max_value=dt.datetime(2200, 1, 1),
    timezones=st.timezones() | OFFSETS,
    allow_imaginary=False,
)


def _of(field: fields.Field, kind: type) -> list[Any]:
    return [v for v in field.validators if isinstance(v, kind)]


def _length_bounds(field: fields.Field, cap: int) -> tuple[int, int]:
    """Return the (min, max) length the field's validators allow; ``cap`` when unbounded."""
    low, high = 0, None
    for v in _of(field, validate.Length):
        low = max(low, v.equal if v.equal is not None else (v.min or 0))
        top = v.equal if v.equal is not None else v.max
        high = top if high is None or (top is not None and top < high) else high
    return low, high if high is not None else max(low, cap)


def _text(field: fields.Field) -> st.SearchStrategy[str]:
    choices = _of(field, validate.OneOf)
    if choices:
        return st.sampled_from(list(choices[0].choices))
    low, high = _length_bounds(field, cap=40)
    size_ok: Callable[[str], bool] = lambda s: low <= len(s) <= high  # noqa: E731
    if isinstance(field, schemas.base.Email):
        return EMAILS.filter(size_ok)
    if isinstance(field, schemas.base.Url):
        return URLS.filter(size_ok)
    patterns = _of(field, validate.Regexp)
    if patterns:
        strategy = st.from_regex(patterns[0].regex, fullmatch=True)
        return strategy.filter(
            lambda s: size_ok(s) and "\x00" not in s and all(p.regex.match(s) for p in patterns)
        )
    return st.text(TEXT, min_size=low, max_size=min(high, low + 40))


def _bounds(field: fields.Field) -> tuple[int, int]:
    low, high = INT4_MIN, INT4_MAX
    for v in _of(field, validate.Range):
        if v.min is not None:
            low = max(low, v.min + (0 if v.min_inclusive else 1))
        if v.max is not None:
            high = min(high, v.max - (0 if v.max_inclusive else 1))
    return low, high


def _integers(field: fields.Field) -> st.SearchStrategy[int]:
    return st.integers(*_bounds(field))


def valid_values(field: fields.Field) -> st.SearchStrategy[Any]:
    """Values ``field`` loads unchanged (datetimes as the same instant)."""
    if isinstance(field, fields.DateTime):
        base: st.SearchStrategy[Any] = AWARE_DATETIMES
    elif isinstance(field, fields.Date):
        base = st.dates()
    elif isinstance(field, fields.Boolean):
        base = st.booleans()
    elif isinstance(field, fields.Integer):
        base = _integers(field)
    elif isinstance(field, fields.String):
        base = _text(field)
    elif isinstance(field, fields.List):
        low, high = _length_bounds(field, cap=4)
        base = st.lists(valid_values(field.inner), min_size=low, max_size=min(high, low + 4))
    elif isinstance(field, fields.Raw):
        base = JSON_VALUES
    else:
        raise TypeError(f"no strategy for {type(field).__name__}: add one to this test")
    return st.none() | base if field.allow_none else base


def valid_data(schema: marshmallow.Schema, *, columns_of: Any = None) -> st.SearchStrategy:
    """Mappings ``schema`` loads: every required field, any subset of the others."""
    names = [n for n in schema.load_fields if columns_of is None or n in columns_of]
    required = {
        n: valid_values(schema.load_fields[n]) for n in names if schema.load_fields[n].required
    }
    optional = {n: valid_values(schema.load_fields[n]) for n in names if n not in required}
    return st.fixed_dictionaries(required, optional=optional)


def dump_each(schema: marshmallow.Schema, values: dict[str, Any]) -> dict[str, Any]:
    """Serialize every value with its field (load-only secrets included)."""
    return {name: schema.fields[name].serialize(name, values) for name in values}


# --- property-based: the compiled Dumper, and write-schema round trips -------------------


@pytest.mark.parametrize("name", sorted(SELECT))
@fast
@given(data=st.data())
def test_dumper_row_equals_schema_dump(name: str, data: st.DataObject) -> None:
    schema = SCHEMAS[f"{name}Schema"]()
    dumper = Dumper(schema, SELECT[name])
    values = tuple(data.draw(valid_values(schema.dump_fields[c]), label=c) for c in dumper.columns)
    assert dumper.row(values) == schema.dump(dict(zip(dumper.columns, values, strict=True)))


def _instants(values: dict[str, Any]) -> dict[str, Any]:
    # Compare datetimes in UTC: Python never finds a time in a DST fold equal across zones.
    return {k: v.astimezone(dt.UTC) if isinstance(v, dt.datetime) else v for k, v in values.items()}


def _assert_loads_back(schema: marshmallow.Schema, values: dict[str, Any]) -> None:
    loaded = load(schema, dump_each(schema, values))
    assert _instants({k: loaded.get(k) for k in values}) == _instants(values)
    for extra in set(loaded) - set(values):
        assert loaded[extra] == schema.fields[extra].load_default, extra


@pytest.mark.parametrize("name", WRITE)
@fast
@given(data=st.data())
def test_any_valid_value_survives_dump_and_load(name: str, data: st.DataObject) -> None:
    schema = SCHEMAS[name]()
    _assert_loads_back(schema, data.draw(valid_data(schema)))


@pytest.mark.parametrize("name", [n for n in WRITE if model_of(n) is not None])
@fast
@given(data=st.data())
def test_model_instance_values_round_trip(name: str, data: st.DataObject) -> None:
    """Values held by a model instance (its defaults included) load back unchanged."""
    schema, model = SCHEMAS[name](), model_of(name)
    columns = model._meta.columns
    given_values = data.draw(valid_data(schema, columns_of=columns))
    instance = model()
    for column, value in given_values.items():
        setattr(instance, columns[column].name, value)
    held = {
        c: instance.__data__[columns[c].name]
        for c in schema.load_fields
        if c in columns and columns[c].name in instance.__data__
    }
    _assert_loads_back(schema, held)


# --- bad input, schema by schema ---------------------------------------------------------


@cache
def _matching(pattern: re.Pattern[str]) -> str:
    return find(
        st.from_regex(pattern, fullmatch=True),
        lambda v: "\x00" not in v,
        settings=settings(database=None),
    )


def valid_example(field: fields.Field) -> Any:
    """One value ``field`` accepts, picked without search where possible."""
    if isinstance(field, fields.DateTime):
        return AWARE
    if isinstance(field, fields.Date):
        return dt.date(2024, 2, 29)
    if isinstance(field, fields.Boolean):
        return True
    if isinstance(field, fields.Integer):
        low, high = _bounds(field)
        return min(max(low, 0), high)
    if isinstance(field, fields.List):
        low, high = _length_bounds(field, cap=1)
        return [valid_example(field.inner)] * max(low, min(1, high))
    if isinstance(field, fields.String):
        choices, patterns = _of(field, validate.OneOf), _of(field, validate.Regexp)
        low, high = _length_bounds(field, cap=10)
        if choices:
            return list(choices[0].choices)[0]
        if isinstance(field, schemas.base.Email):
            return "someone@example.com"
        if isinstance(field, schemas.base.Url):
            return "https://example.com/page"
        if patterns:
            return _matching(patterns[0].regex)
        return "x" * max(low, min(high, 6))
    if isinstance(field, fields.Raw):
        return {"key": "value"}
    raise TypeError(f"no example for {type(field).__name__}: add one to this test")


def minimal_valid(name: str) -> dict[str, Any]:
    """A mapping the write schema accepts: its required fields only."""
    schema = SCHEMAS[name]()
    return {n: valid_example(f) for n, f in schema.load_fields.items() if f.required}


def bad_values(field: fields.Field) -> list[Any]:
    """Inputs ``field`` must refuse."""
    bad: list[Any] = [object()]
    if not field.allow_none:
        bad.append(None)
    if isinstance(field, fields.DateTime):
        bad += ["yesterday", 1700000000, "2024-01-02T03:04:05", dt.datetime(2024, 1, 2, 3, 4, 5)]
    elif isinstance(field, fields.Date):
        bad += ["2024-02-30", 20240101, dt.datetime(2024, 1, 2, tzinfo=dt.UTC)]
    elif isinstance(field, fields.Boolean):
        bad += ["yes", 1, "true"]
    elif isinstance(field, fields.Integer):
        bad += ["1", 1.5, True, INT4_MAX + 1, INT4_MIN - 1]
        bad += [v.min - 1 for v in _of(field, validate.Range) if v.min is not None]
        bad += [v.max + 1 for v in _of(field, validate.Range) if v.max is not None]
    elif isinstance(field, fields.String):
        bad += _bad_text(field)
    elif isinstance(field, fields.List):
        bad += ["not a list", [None], [object()]]
        _, high = _length_bounds(field, cap=10**6)
        if high < 10**6:
            bad.append([f"item{i}" for i in range(high + 1)])
        bad += [[value] for value in _bad_text(field.inner)]
    elif isinstance(field, fields.Raw):
        bad += [{"nan": float("nan")}, ["nul \x00"], {1j: "complex key"}]
    return bad


def _bad_text(field: fields.Field) -> list[Any]:
    bad: list[Any] = [12345, ["a list"], "nul \x00 inside"]
    low, high = _length_bounds(field, cap=10**6)
    if high < 10**6:
        bad.append("a" * (high - 11) + "@example.com" if high > 20 else "x" * (high + 1))
    if low > 0:
        bad.append("")
    if isinstance(field, schemas.base.Email):
        bad += ["not-an-email", "two@@example.com", "@example.com", "someone@"]
    if isinstance(field, schemas.base.Url):
        bad += ["not a url", "ftp://example.com/file", "//example.com"]
    if _of(field, validate.OneOf):
        bad.append("not-one-of-the-choices")
    for pattern in _of(field, validate.Regexp):
        bad += [s for s in ("!! no match !!", "\t") if not pattern.regex.match(s)]
    return bad


@pytest.mark.parametrize("name", WRITE)
def test_missing_required_fields_are_named(name: str) -> None:
    schema = SCHEMAS[name]()
    required = {n for n, f in schema.load_fields.items() if f.required}
    if not required:
        assert load(schema, {}) == {}
        return
    with pytest.raises(ValidationError) as info:
        load(schema, {})
    assert set(info.value.messages) == required
    assert load(schema, minimal_valid(name)) is not None


@pytest.mark.parametrize("name", WRITE)
def test_unknown_keys_and_non_mappings_are_refused(name: str) -> None:
    schema = SCHEMAS[name]()
    for unknown in ("no_such_field", "id", "created_at"):
        if unknown in schema.load_fields:
            continue
        with pytest.raises(ValidationError) as info:
            load(schema, {**minimal_valid(name), unknown: "x"})
        assert set(info.value.messages) == {unknown}
    for not_a_mapping in (None, [], "text"):
        with pytest.raises(ValidationError):
            load(schema, not_a_mapping)


@pytest.mark.parametrize("name", WRITE)
def test_each_bad_value_is_refused_naming_its_field(name: str) -> None:
    schema = SCHEMAS[name]()
    base = minimal_valid(name)
    for field_name, field in schema.load_fields.items():
        for bad in bad_values(field):
            with pytest.raises(ValidationError) as info:
                load(schema, {**base, field_name: bad})
            assert set(info.value.messages) == {field_name}, (field_name, bad)


# --- write inputs: TypedDicts that match their schemas, taken by the queries ---------------

INPUTS = sorted(name for name in PUBLIC if name.endswith("Input"))

# The Python types a caller may pass for what a field loads (None: anything, e.g. JSON).
LOADED_TYPES: tuple[tuple[type[fields.Field], set[type]], ...] = (
    (fields.DateTime, {dt.datetime, str}),
    (fields.Date, {dt.date, str}),
    (fields.String, {str}),
    (fields.Boolean, {bool}),
    (fields.Integer, {int}),
    (fields.List, {list}),
)


def test_the_inputs_are_discovered() -> None:
    assert {"CreateTodoInput", "UpdateTodoInput", "CreateUserInput"} <= set(INPUTS)


@pytest.mark.parametrize("name", INPUTS)
def test_input_keys_required_keys_and_types_match_the_schema(name: str) -> None:
    typed, schema_name = PUBLIC[name], f"{name.removesuffix('Input')}Schema"
    schema = SCHEMAS[schema_name]()
    keys = set(typed.__required_keys__) | set(typed.__optional_keys__)
    mismatch = key_mismatch(name, keys, schema_name, set(schema.load_fields))
    assert not mismatch, mismatch
    required = {key for key, field in schema.load_fields.items() if field.required}
    assert set(typed.__required_keys__) == required, (name, sorted(required))
    hints = typing.get_type_hints(typed)
    for key, field in schema.load_fields.items():
        members = _members(hints[key])
        assert (type(None) in members) == field.allow_none, (name, key, hints[key])
        expected = next((t for kind, t in LOADED_TYPES if isinstance(field, kind)), None)
        if expected is not None:
            assert expected <= members, (name, key, hints[key])


def _data_parameters() -> list[tuple[str, Any]]:
    """(namespace.function, the annotation of its ``data`` argument) for every query."""
    import inspect

    import datalayer.queries as queries

    found = []
    for namespace_name in queries.__all__:
        namespace = getattr(queries, namespace_name)
        for attr in dir(namespace):
            function = getattr(namespace, attr)
            if attr.startswith("_") or not callable(function):
                continue
            function = inspect.unwrap(function)  # past replica_read and other wrappers
            if "data" in inspect.signature(function).parameters:
                hints = typing.get_type_hints(function)
                found.append((f"{namespace_name}.{attr}", hints.get("data")))
    return found


def test_every_data_argument_is_typed_by_its_input() -> None:
    found = dict(_data_parameters())
    found.pop("NotificationQueries.notify")  # its ``data`` is the notification's JSON payload
    assert "TodoQueries.create" in found and "UserQueries.update" in found
    untyped = {name: hint for name, hint in found.items() if not typing.is_typeddict(hint)}
    assert not untyped, untyped
    for name, hint in found.items():
        assert hint.__name__.endswith("Input"), (name, hint)


def test_any_mapping_is_still_accepted_at_run_time() -> None:
    import types as pytypes

    data = pytypes.MappingProxyType({"title": "From a read-only mapping"})
    assert load(schemas.features.create_todo_schema, data) == {"title": "From a read-only mapping"}


# --- a model column renamed under a schema -------------------------------------------------

RENAME_SCRIPT = """
import importlib.abc, importlib.util, sys, warnings
import peewee

class Rename(importlib.abc.MetaPathFinder):
    # Rename Todo.title to Todo.heading right after the model module runs, before any
    # schema is derived from it: what a developer's edit of models/features.py does.
    def find_spec(self, name, path, target=None):
        if name != "datalayer.models.features":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            module.Todo._meta.remove_field("title")
            module.Todo._meta.add_field("heading", peewee.CharField(max_length=255))
        spec.loader.exec_module = exec_module
        return spec

class RenameSecret(Rename):
    # The same for a secret (load_only) column: Session.token becomes Session.secret_token.
    def find_spec(self, name, path, target=None):
        if name != "datalayer.models.auth":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            module.Session._meta.remove_field("token")
            module.Session._meta.add_field("secret_token", peewee.TextField())
        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, Rename())
sys.meta_path.insert(0, RenameSecret())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import datalayer
    from datalayer.schemas.features import CreateTodoSchema, todo_dumper
for w in caught:
    print(type(w.message).__name__, w.message)
print("create fields:", sorted(CreateTodoSchema().load_fields))
print("dumped:", sorted(todo_dumper.columns))
"""


def test_a_renamed_column_does_not_break_import_and_is_named() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", RENAME_SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr  # no bare KeyError at import
    out = result.stdout
    assert "SchemaDriftWarning" in out and "'title'" in out and "Todo" in out, out
    assert "SessionSchema names 'token'" in out, out
    # The derived write schemas follow the model: the new column is writable at once.
    assert "'heading'" in out.split("create fields:")[1].splitlines()[0], out
    assert "'heading'" in out.split("dumped:")[1], out
