"""The seed generator, bulk loads and the schema diagram."""

from __future__ import annotations

import re
from pathlib import Path

import peewee
import pytest
from click.testing import CliRunner
from factories import make_user

from datalayer import ConflictError, DataLayerError, db
from datalayer.cli.dev import diagram_command
from datalayer.cli.diagram import mermaid
from datalayer.connection.bulk import copy_rows
from datalayer.models import (
    ALL_MODELS,
    AdminFlag,
    AdminImpersonationSession,
    AdminSession,
    AdminTenantNote,
    AdminUser,
    AdminUserNote,
    Notification,
    Tenant,
    TenantMember,
    Todo,
    User,
)
from datalayer.seed import SeedPlan, seed

SCHEMA_PAGE = Path(__file__).resolve().parent.parent / "docs" / "schema.md"


def test_the_schema_page_embeds_the_current_diagram() -> None:
    text = SCHEMA_PAGE.read_text()
    match = re.search(r"<!-- diagram:start -->\n```mermaid\n(.*?)```\n<!-- diagram:end -->",
                      text, re.S)
    assert match, "docs/schema.md lost its diagram markers"
    assert match.group(1) == mermaid(), "docs/schema.md's diagram is stale: run `datalayer diagram`"


def test_diagram_lists_every_table_column_and_relation() -> None:
    text = CliRunner().invoke(diagram_command).output
    assert text.startswith("erDiagram\n")
    for model in ALL_MODELS:
        assert f"    {model._meta.table_name} {{" in text
        for field in model._meta.sorted_fields:
            assert re.search(rf"^        \S+ {field.column_name}\b", text, re.M), field
    assert 'tenants |o--o{ user : "active_tenant_id set null"' in text
    assert 'user ||--o| notification_targets : "user_id cascade"' in text


def test_seed_is_deterministic_and_complete(fresh_db) -> None:
    plan = SeedPlan(tenants=3, users_per_tenant=4, todos_per_user=5,
                    notifications_per_user=2, waitlist=7, seed=7)
    ticks: list[int] = []
    written = seed(plan, progress=ticks.append)
    assert written == plan.counts()
    assert sum(ticks) == sum(plan.counts().values())
    assert User.select().count() == 12 and Tenant.select().count() == 3
    assert TenantMember.select().where(TenantMember.role == "owner").count() == 3
    assert Todo.select().count() == 60 and Notification.select().count() == 24
    # The admin console's tables too (two admins by default), consistent with their rules.
    assert AdminUser.select().count() == 2 and AdminSession.select().count() == 2
    assert AdminImpersonationSession.select().where(
        AdminImpersonationSession.ended_at.is_null()).count() == 0
    assert AdminFlag.select().count() == 3 and AdminTenantNote.select().count() == 3
    assert AdminUserNote.select().count() == 4
    first = [t.id for t in Todo.select(Todo.id).order_by(Todo.id)]
    first_admin = [n.id for n in AdminUserNote.select(AdminUserNote.id).order_by(AdminUserNote.id)]
    with pytest.raises(ConflictError, match="already loaded"):
        seed(plan)
    assert Todo.select().count() == 60  # nothing half-written
    # The same seed in another database gives the same rows, ids included.
    for table in ("admin_impersonation_sessions", "admin_flags", "admin_user_notes",
                  "admin_tenant_notes", "admin_sessions", "admin_users"):
        db.execute_sql(f"DELETE FROM {table}")
    db.execute_sql("DELETE FROM todos")
    db.execute_sql("DELETE FROM notifications")
    db.execute_sql("DELETE FROM tenant_members")
    db.execute_sql("DELETE FROM waitlist")
    db.execute_sql('DELETE FROM "user"')
    db.execute_sql("DELETE FROM tenants")
    seed(plan)
    assert [t.id for t in Todo.select(Todo.id).order_by(Todo.id)] == first
    assert [n.id for n in AdminUserNote.select(AdminUserNote.id).order_by(AdminUserNote.id)] == (
        first_admin)


def test_copy_rows_round_trips_awkward_values(txn) -> None:
    user = make_user()
    rows = [
        (f"bulk-{n}", user.id, None, title, None, n % 2 == 0, None)
        for n, title in enumerate(["tab\there", "new\nline", "back\\slash", "ünïcødé", "\\N"])
    ]
    columns = ("id", "user_id", "tenant_id", "title", "description", "completed", "due_date")
    assert copy_rows(Todo, columns, rows) == 5
    stored = {t.id: (t.title, t.completed) for t in Todo.select().where(Todo.user == user.id)}
    assert stored == {r[0]: (r[3], r[5]) for r in rows}


def test_seed_follows_a_column_the_model_gains(fresh_db) -> None:
    # A nullable column or one with a default needs no edit of the seed: the default is
    # written. (Added to the table here too, as the migration would.)
    db.execute_sql("ALTER TABLE todos ADD COLUMN priority INTEGER")
    Todo._meta.add_field("priority", peewee.IntegerField(default=3))
    try:
        seed(SeedPlan(tenants=1, users_per_tenant=2, todos_per_user=3, seed=11))
        assert {t.priority for t in Todo.select(Todo.priority)} == {3}
    finally:
        Todo._meta.remove_field("priority")


def test_seed_refuses_a_model_it_no_longer_fits_naming_the_column(fresh_db) -> None:
    Todo._meta.add_field("effort", peewee.IntegerField())  # NOT NULL, no default
    try:
        with pytest.raises(DataLayerError, match=r"todos\.effort .*NOT NULL, no default"):
            seed(SeedPlan(tenants=1, seed=12))
    finally:
        Todo._meta.remove_field("effort")
    description = Todo._meta.fields["description"]
    Todo._meta.remove_field("description")  # as if renamed
    try:
        with pytest.raises(DataLayerError, match=r"todos\.description.*renamed or removed"):
            seed(SeedPlan(tenants=1, seed=13))
    finally:
        Todo._meta.add_field("description", description)
    assert Todo.select().count() == 0 and User.select().count() == 0  # nothing written
