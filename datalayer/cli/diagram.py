"""A Mermaid ``erDiagram`` of every table, column and relation, generated from the models."""

from __future__ import annotations

import peewee

from datalayer.models import ALL_MODELS, TimestampTZField

__all__ = ["mermaid"]


def _type_name(field: peewee.Field) -> str:
    """Return the PostgreSQL type of a column, as a Mermaid attribute type."""
    if isinstance(field, peewee.ForeignKeyField):
        return _type_name(field.rel_field)
    if isinstance(field, TimestampTZField):
        return "timestamptz"
    if isinstance(field, peewee.DateField):
        return "date"
    if isinstance(field, peewee.BooleanField):
        return "boolean"
    if isinstance(field, peewee.IntegerField):
        return "integer"
    if isinstance(field, peewee.JSONField):
        return "jsonb"
    if isinstance(field, peewee.CharField):
        return f"varchar_{field.max_length}"
    return "text"


def _keys(model: type[peewee.Model], field: peewee.Field) -> str:
    keys = []
    primary = model._meta.primary_key
    if field.primary_key or (isinstance(primary, peewee.CompositeKey)
                             and field.name in primary.field_names):
        keys.append("PK")
    if isinstance(field, peewee.ForeignKeyField):
        keys.append("FK")
    if field.unique and not field.primary_key:
        keys.append("UK")
    return ",".join(keys)


def _comment(field: peewee.Field) -> str:
    notes = []
    if field.null:
        notes.append("nullable")
    if field.choices:
        notes.append(" | ".join(c[0] if isinstance(c, tuple) else c for c in field.choices))
    return f' "{"; ".join(notes)}"' if notes else ""


def _relation(model: type[peewee.Model], field: peewee.ForeignKeyField) -> str:
    parent = field.rel_model._meta.table_name
    child = model._meta.table_name
    left = "|o" if field.null else "||"
    right = "o|" if field.unique else "o{"
    on_delete = f" {field.on_delete}" if field.on_delete else ""
    return f'    {parent} {left}--{right} {child} : "{field.column_name}{on_delete.lower()}"'


def mermaid() -> str:
    """Return the schema as a Mermaid ``erDiagram`` (tables in foreign-key order)."""
    lines = ["erDiagram"]
    relations = []
    for model in ALL_MODELS:
        lines.append(f"    {model._meta.table_name} {{")
        for field in model._meta.sorted_fields:
            keys = _keys(model, field)
            attribute = f"{_type_name(field)} {field.column_name}"
            lines.append(f"        {attribute}{' ' + keys if keys else ''}{_comment(field)}")
            if isinstance(field, peewee.ForeignKeyField):
                relations.append(_relation(model, field))
        lines.append("    }")
    return "\n".join(lines + relations) + "\n"
