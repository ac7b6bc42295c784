"""``datalayer adopt``: a database made by the original TypeScript package, adopted.

The original database is built from the fact sheet (tests/original_schema.py), fully
migrated and with only its first migration, and filled as its application writes rows.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from click.testing import CliRunner
from helpers import (
    create_pg_database,
    drop_pg_database,
    pg_direct_url,
    postgres_only,
)
from original_schema import Sample, build, connect, fill, sha256_hex

import datalayer.adopt.catalog as adopt_catalog
import datalayer.adopt.run as adopt_module
from datalayer import db, init_db
from datalayer.adopt.run import AdoptError, AdoptRefused, adopt
from datalayer.cli.main import main
from datalayer.evolve.migrate import migrate, schema_drift

UTC = dt.UTC
KEYS = {"admin_roles": ("key",), "admin_user_roles": ("admin_user_id", "role_key")}


@pytest.fixture
def database() -> Iterator[str]:
    """A new, empty PostgreSQL database of the test's own."""
    name = create_pg_database()
    try:
        yield pg_direct_url(name)
    finally:
        if db.obj is not None:
            db.close()
        drop_pg_database(name)


@pytest.fixture(params=["full", "first"])
def original(request: pytest.FixtureRequest, database: str) -> tuple[str, Sample]:
    """An original database, both Drizzle migrations applied or only the first, with rows."""
    full = request.param == "full"
    build(database, full=full)
    return database, fill(database, full=full)


def rows(url: str, table: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Every row of a table, by primary key."""
    key = KEYS.get(table, ("id",))
    with connect(url) as cur:
        cur.execute(f'SELECT * FROM "{table}"')
        names = [c.name for c in cur.description]
        found = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    return {tuple(str(r[k]) for k in key): r for r in found}


def tables(url: str, schema: str = "public") -> list[str]:
    with connect(url) as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))
        return sorted(name for (name,) in cur.fetchall())


def fingerprint(url: str) -> dict[str, Any]:
    """The whole database: every schema's tables, columns, constraints, indexes, triggers,
    functions, and a checksum of every table's rows."""
    catalog = {
        "schemas": "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%%' "
                   "AND nspname <> 'information_schema' ORDER BY 1",
        "columns": "SELECT table_schema, table_name, column_name, data_type, is_nullable, "
                   "column_default FROM information_schema.columns WHERE table_schema NOT IN "
                   "('pg_catalog', 'information_schema') ORDER BY 1, 2, 3",
        "constraints": "SELECT n.nspname, conname, pg_get_constraintdef(k.oid) FROM "
                       "pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace "
                       "WHERE n.nspname NOT LIKE 'pg\\_%%' AND n.nspname <> "
                       "'information_schema' ORDER BY 1, 2, 3",
        "indexes": "SELECT schemaname, indexname, indexdef FROM pg_indexes WHERE schemaname "
                   "NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
        "triggers": "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger "
                    "WHERE NOT tgisinternal ORDER BY 1",
        "functions": "SELECT n.nspname, proname FROM pg_proc p JOIN pg_namespace n ON "
                     "n.oid = p.pronamespace WHERE n.nspname NOT IN ('pg_catalog', "
                     "'information_schema') ORDER BY 1, 2",
    }
    found: dict[str, Any] = {}
    with connect(url) as cur:
        for name, sql in catalog.items():
            cur.execute(sql)
            found[name] = cur.fetchall()
        cur.execute("SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN "
                    "('pg_catalog', 'information_schema')")
        for schema, table in cur.fetchall():
            cur.execute(f'SELECT count(*), md5(coalesce(string_agg(md5(t::text), \',\' '
                        f'ORDER BY md5(t::text)), \'\')) FROM "{schema}"."{table}" t')
            found[f"{schema}.{table}"] = cur.fetchone()
    return found


def same(before: Any, after: Any) -> bool:
    """Equal once the original's forms are read as the library's (wall-clock UTC, ...)."""
    if isinstance(before, dt.datetime) and before.tzinfo is None:
        before = before.replace(tzinfo=UTC)  # a `timestamp` holds UTC wall-clock time
    if isinstance(before, uuid.UUID):
        before = str(before)  # uuid ids become text
    return bool(before == after)


# --- adopt, then every row is there ------------------------------------------------------

@postgres_only
def test_every_row_is_kept_and_every_instant_unchanged(
        original: tuple[str, Sample], monkeypatch: pytest.MonkeyPatch) -> None:
    url, sample = original
    names = tables(url)
    before = {table: rows(url, table) for table in names}

    # A session in another zone: a `timestamp` must still be read as UTC.
    monkeypatch.setenv("PGTZ", "America/New_York")
    report = adopt(url)
    monkeypatch.delenv("PGTZ")
    assert any("America/New_York" in warning for warning in report.warnings)

    assert report.variant == sample_variant(sample) and not report.dry_run
    assert report.rows_before == {t: len(r) for t, r in before.items()}
    changed = {  # what the README's rules change, and nothing else
        ("user", sample.users["frank"], "active_tenant_id"): None,
        ("tenant_invites", sample.resent_invites[0], "status"): "expired",
    }
    for table, old_rows in before.items():
        if table == "notification_deliveries":
            continue
        new_rows = rows(url, table)
        assert set(new_rows) == set(old_rows), table
        assert report.rows_after[table] == len(old_rows), table
        for key, old in old_rows.items():
            new = new_rows[key]
            for column, value in old.items():
                if column in ("token", "is_admin"):
                    continue
                expected = changed.get((table, key[0], column), value)
                if (table, column) == ("user_activity_daily", "features_used"):
                    expected = value or []  # NULL -> the column's default, []
                assert same(expected, new[column]), (table, key, column, value, new[column])
    # the folded delivery log: one queue row per (notification, channel)
    assert report.rows_before["notification_deliveries"] == sample.deliveries
    assert len(rows(url, "notification_deliveries")) == sample.delivery_groups
    assert report.folded == sample.deliveries - sample.delivery_groups == 1
    total_before, total_after = sum(report.rows_before.values()), sum(report.rows_after.values())
    assert total_after == total_before - report.folded
    assert "migratehistory" in tables(url)
    with connect(url) as cur:  # Drizzle's bookkeeping stays as it was
        cur.execute("SELECT count(*) FROM drizzle.__drizzle_migrations")
        assert cur.fetchone()[0] == (2 if sample.full else 1)


def sample_variant(sample: Sample) -> str:
    return "full" if sample.full else "first"


@postgres_only
def test_conversions_and_rules(original: tuple[str, Sample]) -> None:
    url, sample = original
    tokens = {r["id"]: r["token"] for r in rows(url, "tenant_invites").values()}
    adopt(url)
    users = rows(url, "user")
    assert users[(sample.users["dave"],)]["admin_role"] == "super_admin"  # is_admin, or 0001
    assert all(u["admin_role"] is None for k, u in users.items() if k != (sample.users["dave"],))
    assert users[(sample.users["alice"],)]["created_at"] == dt.datetime(
        2025, 1, 10, 7, 59, 59, 1000, tzinfo=UTC)
    invites = rows(url, "tenant_invites")
    for (invite_id,), invite in invites.items():
        assert invite["token_hash"] == sha256_hex(tokens[invite_id])
    older, newer = sample.resent_invites
    assert (invites[(older,)]["status"], invites[(newer,)]["status"]) == ("expired", "pending")
    accepted = [i for i in invites.values() if i["status"] == "accepted"]
    assert [i["accepted_at"] for i in accepted] == [i["updated_at"] for i in accepted]
    queue = {(d["notification_id"], d["channel"]): d
             for d in rows(url, "notification_deliveries").values()}
    retried = queue[(sample.folded_notification, "push")]
    assert (retried["status"], retried["attempts"], retried["provider_message_id"],
            retried["error"]) == ("sent", 2, "expo-ticket-123", "Expo push failed: TooManyRequests")
    assert retried["sent_at"] == dt.datetime(2025, 1, 12, 11, 1, 0, 100000, tzinfo=UTC)
    assert {d["status"] for d in queue.values()} == {"sent", "skipped", "failed"}
    assert all(d["attempts"] == 1 for k, d in queue.items() if k[0] != sample.folded_notification)
    roles = rows(url, "admin_roles")
    assert roles[("read_only",)]["permissions"] == ["metrics:read", "users:read"]
    events = rows(url, "subscription_events").values()
    assert {e["outcome"] for e in events} == {"applied"}
    assert all(isinstance(r["id"], str) for r in rows(url, "waitlist").values())


# --- the library works on the adopted database ---------------------------------------------

@postgres_only
def test_the_library_reads_the_rows_and_accepts_an_invite_sent_before(
        original: tuple[str, Sample]) -> None:
    from datalayer import (
        AdminRoleQueries,
        DeliveryQueries,
        NotificationQueries,
        SubscriptionQueries,
        TenantInviteQueries,
        TenantMemberQueries,
        TodoQueries,
        UserQueries,
        WaitlistQueries,
    )

    url, sample = original
    adopt(url)
    init_db(url)
    u, t = sample.users, sample.tenants
    alice = UserQueries.find_by_email("alice@example.com")
    assert alice is not None and alice["id"] == u["alice"]
    todos = TodoQueries.list_for_user(u["alice"], tenant_id=t["t1"])["items"]
    assert [todo["title"] for todo in todos] == ["Plan trip", "Buy milk"]
    assert todos[0]["due_date"].startswith("2025-06-01T12:00:00")
    inbox = NotificationQueries.inbox(u["alice"], include_archived=True)["items"]
    assert {n["type"] for n in inbox} >= {"direct_message", "member_joined"}
    assert SubscriptionQueries.current_for_tenant(t["t1"])["polar_subscription_id"] == "sub_123"
    assert WaitlistQueries.find_by_email("early@example.com") is not None
    assert "system:manage" in AdminRoleQueries.permissions_for(u["dave"])
    delivery = next(iter(rows(url, "notification_deliveries")))[0]
    assert DeliveryQueries.find_by_id(delivery) is not None

    invite = TenantInviteQueries.find_by_token(sample.invite_token)
    assert invite is not None and invite["email"] == "carol@example.com"
    UserQueries.update(u["carol"], {"email_verified": True})  # accepting requires it
    member = TenantInviteQueries.accept(sample.invite_token, u["carol"])
    assert member["tenant_id"] == t["t1"] and member["role"] == "member"
    assert TenantMemberQueries.find(t["t1"], u["carol"]) is not None


@postgres_only
def test_check_passes_migrate_has_nothing_to_do_and_the_schema_is_migrates(
        original: tuple[str, Sample], tmp_path: Path) -> None:
    url, _ = original
    adopt(url)
    assert schema_drift(url) == []
    assert migrate(url) == []
    name = create_pg_database()
    try:  # the schema `datalayer migrate` builds on an empty database, object for object
        fresh = pg_direct_url(name)
        migrate(fresh)
        ours, theirs = fingerprint(url), fingerprint(fresh)
        for part in ("columns", "constraints", "indexes", "triggers"):
            assert [r for r in ours[part] if r[0] != "drizzle"] == theirs[part], part
        assert ours["functions"] == theirs["functions"]
        assert sorted(ours["schemas"]) == sorted([*theirs["schemas"], ("drizzle",)])
    finally:
        drop_pg_database(name)


@postgres_only
def test_a_second_adopt_changes_nothing(original: tuple[str, Sample]) -> None:
    url, _ = original
    adopt(url)
    before = fingerprint(url)
    report = adopt(url)
    assert report.already_adopted and report.pending == []
    result = CliRunner().invoke(main, ["adopt", "--database", url])
    assert result.exit_code == 0 and "Already adopted" in result.output
    assert fingerprint(url) == before


@postgres_only
def test_dry_run_prints_the_plan_and_writes_nothing(original: tuple[str, Sample]) -> None:
    url, sample = original
    before = fingerprint(url)
    result = CliRunner().invoke(main, ["adopt", "--dry-run", "--database", url])
    assert result.exit_code == 0, result.output
    assert "Dry run: nothing was written" in result.output
    assert "copy todos" in result.output and "-> 'expired'" in result.output
    report = adopt(url, dry_run=True)
    assert report.dry_run and report.rows_after["notification_deliveries"] == 4
    fixes = {rule.split(" -> ")[0]: n for _, rule, n in report.fixes}
    assert fixes["pending invites to an address that has a newer pending invite in the "
                 "same tenant"] == 1
    assert fingerprint(url) == before


@pytest.fixture
def role() -> Iterator[str]:
    """A role of the test's own (request it before ``database``: dropped after it)."""
    name = f"dltest_app_{uuid.uuid4().hex[:8]}"
    with connect(pg_direct_url("postgres")) as cur:
        cur.execute(f'CREATE ROLE "{name}"')
    try:
        yield name
    finally:
        with connect(pg_direct_url("postgres")) as cur:
            cur.execute(f'DROP ROLE IF EXISTS "{name}"')


@postgres_only
def test_other_roles_keep_their_privileges_and_dropped_extras_are_named(
        role: str, database: str) -> None:
    build(database)
    with connect(database) as cur:
        cur.execute(f'GRANT SELECT, INSERT ON todos TO "{role}"')
        cur.execute(f'GRANT SELECT ON "user" TO "{role}"')
        cur.execute("CREATE POLICY own_todos ON todos USING (true)")
    report = adopt(database)
    with connect(database) as cur:
        cur.execute("SELECT has_table_privilege(%s, 'public.todos', 'INSERT'), "
                    "has_table_privilege(%s, 'public.todos', 'DELETE'), "
                    "has_table_privilege(%s, 'public.user', 'SELECT'), "
                    "has_table_privilege(%s, 'public.tenants', 'SELECT')", (role,) * 4)
        assert cur.fetchone() == (True, False, True, False)
    assert any("policy own_todos on todos" in warning for warning in report.warnings)


# --- refusals and failures leave the database untouched ---------------------------------

def _create_foreign(url: str, kind: str) -> None:
    with connect(url) as cur:
        if kind == "someone else's tables":
            cur.execute("CREATE TABLE todos (id serial PRIMARY KEY, title text)")
            cur.execute("INSERT INTO todos (title) VALUES ('x')")
        elif kind == "drizzle-kit push of another app":
            cur.execute("CREATE SCHEMA drizzle")
            cur.execute("CREATE TABLE drizzle.__drizzle_migrations "
                        "(id serial PRIMARY KEY, hash text NOT NULL, created_at bigint)")
            cur.execute("INSERT INTO drizzle.__drizzle_migrations (hash, created_at) "
                        "VALUES ('0123abcd', 1)")
    if kind == "the package's, with a column added by hand":
        build(url)
        with connect(url) as cur:
            cur.execute("ALTER TABLE todos ADD COLUMN priority integer")
    elif kind == "first migration recorded, second applied by hand":
        build(url, full=False)
        with connect(url) as cur:
            cur.execute('ALTER TABLE "user" ADD COLUMN admin_role text')
            cur.execute('ALTER TABLE "user" DROP COLUMN is_admin')
    elif kind == "a datalayer database":
        migrate(url)


@postgres_only
@pytest.mark.parametrize("kind", [
    "empty", "someone else's tables", "drizzle-kit push of another app",
    "the package's, with a column added by hand",
    "first migration recorded, second applied by hand", "a datalayer database",
])
def test_anything_else_is_refused_untouched(database: str, kind: str) -> None:
    _create_foreign(database, kind)
    before = fingerprint(database)
    with pytest.raises(AdoptRefused, match="refused") as refused:
        adopt(database)
    assert fingerprint(database) == before
    result = CliRunner().invoke(main, ["adopt", "--database", database])
    assert result.exit_code == 1 and "refused" in result.output
    assert fingerprint(database) == before
    if kind == "empty":
        assert "no tables at all" in str(refused.value)
    if kind.startswith("the package's"):
        assert "todos.priority" in str(refused.value)


def test_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite3"
    with pytest.raises(AdoptRefused, match="PostgreSQL only"):
        adopt(f"sqlite:///{path}")
    result = CliRunner().invoke(main, ["adopt", "--database", f"sqlite:///{path}"])
    assert result.exit_code == 1 and "SQLite" in result.output
    assert not path.exists()


@postgres_only
@pytest.mark.parametrize("where", ["copying the users", "after the swap into public"])
def test_a_failure_midway_leaves_the_original_intact(
        original: tuple[str, Sample], monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    url, _ = original
    before = fingerprint(url)
    if where == "copying the users":
        real_copy = adopt_module._Run._copy

        def copy(self: Any, sql: str, table: str, expected: int) -> int:
            written = real_copy(self, sql, table, expected)
            if table == "user":
                raise RuntimeError("injected failure")
            return written

        monkeypatch.setattr(adopt_module._Run, "_copy", copy)
    else:
        real_move = adopt_catalog.move_all

        def move_all(*args: Any) -> int:
            moved = real_move(*args)  # the originals are dropped, the new tables in public
            raise RuntimeError("injected failure")
            return moved  # pragma: no cover

        monkeypatch.setattr(adopt_catalog, "move_all", move_all)
    with pytest.raises(AdoptError, match="injected failure.*nothing was changed"):
        adopt(url)
    assert fingerprint(url) == before


@postgres_only
@pytest.mark.parametrize("change, message", [
    ("ADD COLUMN priority integer NOT NULL",
     "todos.priority is NOT NULL with no DEFAULT and no rule fills it"),
    ("DROP COLUMN description",
     "todos.description: the original column has no place in the target"),
    ("ALTER COLUMN due_date TYPE date",
     "todos.due_date: no conversion from timestamp without time zone to date"),
])
def test_a_target_adopt_cannot_fill_is_refused(
        original: tuple[str, Sample], monkeypatch: pytest.MonkeyPatch,
        change: str, message: str) -> None:
    """A later migration that changes a table adopt has no rule for fails loudly."""
    url, _ = original
    before = fingerprint(url)
    real_build = adopt_module._Run._build_target

    def build_target(self: Any) -> None:
        real_build(self)
        self.db.execute_sql(f"ALTER TABLE datalayer_adopt.todos {change}")

    monkeypatch.setattr(adopt_module._Run, "_build_target", build_target)
    with pytest.raises(AdoptError, match=message):
        adopt(url)
    assert fingerprint(url) == before


@postgres_only
def test_a_new_nullable_column_takes_its_default(
        original: tuple[str, Sample], monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = original
    real_build = adopt_module._Run._build_target

    def build_target(self: Any) -> None:
        real_build(self)
        self.db.execute_sql("ALTER TABLE datalayer_adopt.todos "
                            "ADD COLUMN priority integer NOT NULL DEFAULT 3")

    monkeypatch.setattr(adopt_module._Run, "_build_target", build_target)
    report = adopt(url, dry_run=True)
    assert "priority" in report.defaulted["todos"]


@postgres_only
def test_an_old_writer_still_in_a_transaction_makes_adopt_give_up(
        original: tuple[str, Sample]) -> None:
    url, sample = original
    before = fingerprint(url)
    writer = psycopg2.connect(url)
    try:
        writer.cursor().execute(  # an open transaction of the old application
            "UPDATE todos SET completed = true WHERE user_id = %s", (sample.users["bob"],))
        with pytest.raises(AdoptError, match="stop the old application"):
            adopt(url, lock_timeout=0.5)
    finally:
        writer.rollback()
        writer.close()
    assert fingerprint(url) == before


@postgres_only
def test_adopt_waits_for_a_concurrent_adopt(original: tuple[str, Sample]) -> None:
    """Two adopts at once: one converts, the other then finds it already adopted."""
    url, _ = original
    reports: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            reports.append(adopt(url))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sorted(r.already_adopted for r in reports) == [False, True]

