"""A field as migration code: the constructor call a generated migration writes."""

from __future__ import annotations

from datalayer.evolve.state import FieldState

__all__ = ["INDENT", "default_code", "field_code", "helpers_of"]

INDENT = "    "


def default_code(default: tuple[str, str]) -> str:
    """Return the ``ServerDefault(...)`` call for a (PostgreSQL, SQLite) default."""
    postgres, sqlite = default
    return f"ServerDefault({postgres!r})" if postgres == sqlite else \
        f"ServerDefault({postgres!r}, {sqlite!r})"


def helpers_of(state: FieldState) -> set[str]:
    """Return the migration_ops names a field's code uses."""
    helpers = {"ServerDefault"} if state.default else set()
    return helpers | ({"TimestampTZField"} if state.kind == "TimestampTZField" else set())


def field_code(state: FieldState, *, declare_index: bool = False) -> str:
    """Return the constructor call that declares a field in a migration."""
    args: list[str] = []
    if state.fk:
        table, column, on_delete, on_update = state.fk
        rel = "'self'" if table == state.field.model._meta.table_name \
            else f"migrator.orm[{table!r}]"
        args += [rel, f"column_name={state.column!r}", f"field={column!r}"]
        args += [f"on_delete={on_delete!r}"] if on_delete else []
        args += [f"on_update={on_update!r}"] if on_update else []
        args.append("backref='+'")
    elif state.column != state.name:
        args.append(f"column_name={state.column!r}")
    if state.max_length is not None and state.kind == "pw.CharField":
        args.append(f"max_length={state.max_length}")
    if state.primary_key:
        args.append("primary_key=True")
    if state.null:
        args.append("null=True")
    if declare_index and state.unique:
        args.append("unique=True")
    elif declare_index and state.fk and not state.index:
        args.append("index=False")
    elif declare_index and state.index and not state.fk and not state.primary_key:
        args.append("index=True")
    constant = state.field.default
    if isinstance(constant, bool | int | float | str):  # the guard counts other values
        args.append(f"default={constant!r}")
    if state.default:
        args.append(f"constraints=[{default_code(state.default)}]")
    return f"{state.kind}({', '.join(args)})"
