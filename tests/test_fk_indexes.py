"""Every foreign key column leads an index, read from the live catalog of a migrated database.

Without one, a cascade or SET NULL on the parent, and every FK check of a parent's
delete, reads the whole child table. A partial index does not count: it serves only the
queries whose WHERE implies its predicate, and an FK action's does not.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg2
from helpers import IS_PG, direct_url, scratch_database

from datalayer.evolve.migrate import migrate

PG_UNINDEXED_FKS = """
    SELECT c.conrelid::regclass::text AS child, c.conname,
           array_to_string(ARRAY(
               SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(attnum, n)
               JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
               ORDER BY k.n), ', ') AS columns
    FROM pg_constraint c
    WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
      AND NOT EXISTS (
          SELECT 1 FROM pg_index i
          WHERE i.indrelid = c.conrelid AND i.indpred IS NULL AND i.indisvalid
            -- the index's leading columns are the key's columns, in any order
            AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
            AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey)
    ORDER BY 1, 2
"""


def unindexed_foreign_keys(url: str) -> list[str]:
    """Return ``table(columns)`` for every foreign key no full index is led by."""
    if IS_PG:
        conn = psycopg2.connect(direct_url(url))
        try:
            with conn.cursor() as cur:
                cur.execute(PG_UNINDEXED_FKS)
                return [f"{child}({columns})" for child, _, columns in cur.fetchall()]
        finally:
            conn.close()
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        missing = []
        tables = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for table in tables:
            keys: dict[int, list[str]] = {}
            for fk_id, _, _, column, *_ in conn.execute(f'PRAGMA foreign_key_list("{table}")'):
                keys.setdefault(fk_id, []).append(column)
            leads = []
            for _, name, _, _, partial in conn.execute(f'PRAGMA index_list("{table}")'):
                if not partial:
                    info = conn.execute(f'PRAGMA index_info("{name}")').fetchall()
                    leads.append([column for _, _, column in sorted(info)])
            for columns in keys.values():
                if not any(set(lead[: len(columns)]) == set(columns) for lead in leads):
                    missing.append(f"{table}({', '.join(columns)})")
        return sorted(missing)
    finally:
        conn.close()


def test_every_foreign_key_column_leads_an_index(database_url: str) -> None:
    assert unindexed_foreign_keys(database_url) == []


def test_the_check_finds_an_unindexed_foreign_key(tmp_path: Path) -> None:
    """The catalog query itself: a child table whose FK is only covered by a partial
    index, or by an index it is not the first column of, is reported."""
    with scratch_database(tmp_path) as url:
        migrate(url)
        statements = [
            "CREATE TABLE probe (id text PRIMARY KEY, kind text, "
            'user_id text REFERENCES "user" (id) ON DELETE CASCADE)',
            "CREATE INDEX probe_partial ON probe (user_id) WHERE kind IS NULL",
            "CREATE INDEX probe_second ON probe (kind, user_id)",
        ]
        if IS_PG:
            conn = psycopg2.connect(url)
            with conn, conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
            conn.close()
        else:
            conn = sqlite3.connect(url.removeprefix("sqlite:///"))
            with conn:
                for statement in statements:
                    conn.execute(statement)
            conn.close()
        assert unindexed_foreign_keys(url) == ["probe(user_id)"]
