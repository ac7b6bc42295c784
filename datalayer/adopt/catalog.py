"""Catalog reads and schema moves for ``datalayer adopt`` (PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datalayer.errors import AdoptError


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # format_type(), e.g. "timestamp with time zone"
    not_null: bool
    default: str | None  # the DEFAULT expression, as pg_get_expr prints it


def ident(name: str) -> str:
    """Quote an identifier."""
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    return f"{ident(schema)}.{ident(name)}"


def columns(database: Any, schema: str) -> dict[str, list[Column]]:
    """Every ordinary table of ``schema`` with its columns, in column order."""
    cursor = database.execute_sql(
        "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
        "pg_get_expr(d.adbin, d.adrelid) "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY c.relname, a.attnum",
        (schema,))
    tables: dict[str, list[Column]] = {}
    for table, name, type_, not_null, default in cursor.fetchall():
        tables.setdefault(table, []).append(Column(name, type_, not_null, default))
    return tables


def dependency_order(database: Any, schema: str, tables: list[str]) -> list[str]:
    """``tables`` ordered so that every table comes after the tables its foreign keys name."""
    cursor = database.execute_sql(
        "SELECT c.relname, r.relname FROM pg_constraint k "
        "JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid "
        "WHERE k.contype = 'f' AND c.relnamespace = %s::regnamespace",
        (ident(schema),))
    needs: dict[str, set[str]] = {t: set() for t in tables}
    for table, referenced in cursor.fetchall():
        if table in needs and referenced in needs and referenced != table:
            needs[table].add(referenced)
    ordered: list[str] = []
    while needs:
        ready = sorted(t for t, deps in needs.items() if not deps - set(ordered))
        if not ready:
            raise AdoptError(f"the foreign keys of {', '.join(sorted(needs))} form a cycle")
        ordered += ready
        for table in ready:
            del needs[table]
    return ordered


def move_all(database: Any, source: str, target: str) -> int:
    """Move every object of schema ``source`` into ``target``, then drop ``source``.

    Tables take their indexes, constraints, triggers and owned sequences with them.
    DROP SCHEMA without CASCADE fails if anything was left behind.
    """
    src = ident(source)
    statements = [
        f"ALTER TABLE {qualified(source, name)} SET SCHEMA {ident(target)}"
        for (name,) in database.execute_sql(
            "SELECT relname FROM pg_class WHERE relnamespace = %s::regnamespace "
            "AND relkind IN ('r', 'p') ORDER BY relname", (src,)).fetchall()]
    kinds = {"S": "SEQUENCE", "v": "VIEW", "m": "MATERIALIZED VIEW"}
    statements += [
        f"ALTER {kinds[kind]} {qualified(source, name)} SET SCHEMA {ident(target)}"
        for name, kind in database.execute_sql(
            "SELECT c.relname, c.relkind FROM pg_class c WHERE c.relnamespace = %s::regnamespace "
            "AND c.relkind IN ('S', 'v', 'm') AND NOT EXISTS (SELECT 1 FROM pg_depend d "
            "WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i'))",
            (src,)).fetchall()]
    statements += [
        f"ALTER ROUTINE {qualified(source, name)}({args}) SET SCHEMA {ident(target)}"
        for name, args in database.execute_sql(
            "SELECT proname, pg_get_function_identity_arguments(oid) FROM pg_proc "
            "WHERE pronamespace = %s::regnamespace AND prokind IN ('f', 'p')", (src,)).fetchall()]
    statements += [
        f"ALTER {'DOMAIN' if kind == 'd' else 'TYPE'} {qualified(source, name)} "
        f"SET SCHEMA {ident(target)}"
        for name, kind in database.execute_sql(
            "SELECT typname, typtype FROM pg_type WHERE typnamespace = %s::regnamespace "
            "AND typtype IN ('e', 'd', 'r')", (src,)).fetchall()]
    for statement in statements:
        database.execute_sql(statement)
    database.execute_sql(f"DROP SCHEMA {src}")
    return len(statements)


def detach_keys(database: Any, schema: str, tables: list[str]) -> list[str]:
    """Drop the foreign keys, keys and indexes of ``tables`` (for a fast bulk load).

    Returns the statements that put them back exactly (same names and definitions):
    keys and indexes first, foreign keys last -- adding a foreign key checks every row
    in one query, and a unique index refuses duplicates, so nothing goes unchecked.
    """
    src = ident(schema)
    wanted = set(tables)
    constraints = [
        row for row in database.execute_sql(
            "SELECT k.contype, c.relname, k.conname, pg_get_constraintdef(k.oid) "
            "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
            "WHERE k.connamespace = %s::regnamespace AND k.contype IN ('f', 'p', 'u', 'x') "
            "ORDER BY k.contype = 'f' DESC, c.relname, k.conname", (src,)).fetchall()
        if row[1] in wanted]
    indexes = [
        row for row in database.execute_sql(
            "SELECT c.relname, i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x "
            "JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE c.relnamespace = %s::regnamespace AND NOT EXISTS (SELECT 1 FROM "
            "pg_constraint k WHERE k.conindid = x.indexrelid AND k.conrelid = x.indrelid "
            "AND k.contype IN ('p', 'u', 'x')) ORDER BY c.relname, i.relname",
            (src,)).fetchall()
        if row[0] in wanted]
    for _, table, name, _ in constraints:  # foreign keys first: they need the keys
        database.execute_sql(
            f"ALTER TABLE {qualified(schema, table)} DROP CONSTRAINT {ident(name)}")
    for _, name, _ in indexes:
        database.execute_sql(f"DROP INDEX {qualified(schema, name)}")
    keys = [(t, n, d) for kind, t, n, d in constraints if kind != "f"]
    foreign = [(t, n, d) for kind, t, n, d in constraints if kind == "f"]
    return ([f"ALTER TABLE {qualified(schema, t)} ADD CONSTRAINT {ident(n)} {d}"
             for t, n, d in keys]
            + [definition for _, _, definition in indexes]
            + [f"ALTER TABLE {qualified(schema, t)} ADD CONSTRAINT {ident(n)} {d}"
               for t, n, d in foreign])


def grants(database: Any, schema: str, tables: list[str]) -> list[str]:
    """The GRANT statements that give ``tables`` the privileges they have now.

    Roles other than the owner keep what they could do on the original tables (an
    application role, Supabase's ``authenticated``, ...) once the new tables replace them.
    """
    cursor = database.execute_sql(
        "SELECT c.relname, CASE WHEN a.grantee = 0 THEN 'PUBLIC' "
        "ELSE quote_ident(pg_get_userbyid(a.grantee)) END, a.privilege_type, a.is_grantable "
        "FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a "
        "WHERE c.relnamespace = %s::regnamespace AND c.relname = ANY(%s) "
        "AND a.grantee <> c.relowner ORDER BY 1, 2, 3", (ident(schema), tables))
    return [f"GRANT {privilege} ON {qualified(schema, table)} TO {grantee}"
            + (" WITH GRANT OPTION" if grantable else "")
            for table, grantee, privilege, grantable in cursor.fetchall()]


def dropped_with(database: Any, schema: str, tables: list[str]) -> list[str]:
    """What dropping ``tables`` would silently take with it: policies, triggers, publications."""
    cursor = database.execute_sql(
        "SELECT format('row-level security policy %%s on %%s', p.polname, c.relname) "
        "FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid "
        "WHERE c.relnamespace = %s::regnamespace AND c.relname = ANY(%s) "
        "UNION ALL SELECT format('trigger %%s on %%s', t.tgname, c.relname) FROM pg_trigger t "
        "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal "
        "AND c.relnamespace = %s::regnamespace AND c.relname = ANY(%s) "
        "UNION ALL SELECT format('%%s in publication %%s', c.relname, p.pubname) "
        "FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid "
        "JOIN pg_class c ON c.oid = r.prrelid "
        "WHERE c.relnamespace = %s::regnamespace AND c.relname = ANY(%s) ORDER BY 1",
        (ident(schema), tables) * 3)
    return [what for (what,) in cursor.fetchall()]
