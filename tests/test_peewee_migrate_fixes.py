"""datalayer's fixes to peewee_migrate 2.3, which ``datalayer migrate`` and (through
``migrations/conf.py``) ``pw_migrate`` run with: a migration written with peewee_migrate's
own operations, on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import peewee as pw
from peewee_migrate import Migrator

from datalayer.evolve.steps import install_fixes


def test_remove_fields_of_a_foreign_key_declared_with_backref_plus(tmp_path: Path) -> None:
    """peewee_migrate ran ``delattr(User, '+')``: AttributeError, so a generated FK column
    could be neither dropped nor rolled back."""
    install_fixes()
    database = pw.SqliteDatabase(str(tmp_path / "fk.sqlite3"))
    migrator = Migrator(database)

    @migrator.create_model
    class Owner(pw.Model):
        name = pw.TextField()

        class Meta:
            table_name = "owner"

    @migrator.create_model
    class Item(pw.Model):
        title = pw.TextField()

        class Meta:
            table_name = "item"

    migrator()
    migrator.add_fields("item", owner=pw.ForeignKeyField(
        migrator.orm["owner"], column_name="owner_id", null=True, backref="+"))
    migrator()
    database.execute_sql("INSERT INTO item (title) VALUES ('kept')")
    migrator.remove_fields("item", "owner")
    migrator()
    assert "owner" not in migrator.orm["item"]._meta.fields
    assert [c.name for c in database.get_columns("item")] == ["id", "title"]
    assert database.execute_sql("SELECT title FROM item").fetchall() == [("kept",)]
