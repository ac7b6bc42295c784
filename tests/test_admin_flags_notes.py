"""AdminFlagQueries and AdminNoteQueries: flags that expire, notes their author edits,
every write audited in its transaction; and concurrent sets of one flag (real threads)."""

from __future__ import annotations

import datetime as dt

import peewee
import pytest
from admin_console_helpers import actions, audit_rows
from admin_console_helpers import new_admin as helpers_new_admin
from factories import make_tenant, make_user
from helpers import race

from datalayer import (
    AdminFlagQueries,
    AdminNoteQueries,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    db,
)
from datalayer.models import AdminFlag, AdminTenantNote, AdminUserNote, User
from datalayer.models.base import utcnow

Flags = AdminFlagQueries
Notes = AdminNoteQueries



def new_admin(*permissions: str) -> str:
    """An active admin who may write about users and tenants (flags, notes), and more."""
    return helpers_new_admin("users:write", "tenants:write", *permissions)

@pytest.mark.usefixtures("txn")
class TestFlags:
    def test_set_again_renews_the_same_flag(self) -> None:
        admin, other, user = new_admin(), new_admin(), make_user()
        first = Flags.set("user", user.id, admin, flag_type="vip", reason="big account")
        assert (first["target_type"], first["target_id"], first["flag_type"]) == (
            "user", user.id, "vip")
        assert first["expires_at"] is None and first["created_by"] == admin
        until = utcnow() + dt.timedelta(days=3)
        again = Flags.set("user", user.id, other, flag_type="vip", reason="renewed", expires_at=until)
        assert again["id"] == first["id"] and again["created_at"] == first["created_at"]
        assert (again["reason"], again["expires_at"]) == ("renewed", until.isoformat())
        assert AdminFlag.select().count() == 1
        rows = audit_rows(target_id=user.id)
        assert [(r.action, r.admin_user_id, r.reason) for r in rows] == [
            ("USER_FLAG_SET", admin, "big account"), ("USER_FLAG_SET", other, "renewed")]

    def test_custom_flags_need_a_label_and_only_they_have_one(self) -> None:
        admin, tenant = new_admin(), make_tenant()
        for label, flag in ((None, "custom"), ("", "custom"), ("label", "vip")):
            with pytest.raises(ValidationError) as info:
                Flags.set("tenant", tenant.id, admin, flag_type=flag, reason="r", custom_label=label)
            assert "custom_label" in info.value.messages
        flag = Flags.set("tenant", tenant.id, admin, flag_type="custom", reason="r", custom_label="Pilot")
        assert flag["custom_label"] == "Pilot"
        assert actions(target_id=tenant.id) == ["TENANT_FLAG_SET"]
        with pytest.raises(peewee.IntegrityError), db.atomic():  # the database checks it too
            AdminFlag.create(target_type="tenant", target_id=tenant.id, flag_type="at_risk",
                             custom_label="no", reason="r", created_by=admin)

    def test_expired_flags_are_left_out_until_set_again(self) -> None:
        admin, user = new_admin(), make_user()
        soon = utcnow() + dt.timedelta(hours=1)
        Flags.set("user", user.id, admin, flag_type="under_review", reason="fraud check", expires_at=soon)
        Flags.set("user", user.id, admin, flag_type="beta_tester", reason="early")
        assert {f["flag_type"] for f in Flags.list_for("user", user.id)} == {
            "under_review", "beta_tester"}
        later = soon + dt.timedelta(seconds=1)
        assert [f["flag_type"] for f in Flags.list_for("user", user.id, now=later)] == [
            "beta_tester"]
        assert Flags.list_by_type(flag_type="under_review", now=later)["items"] == []
        assert len(Flags.list_by_type(flag_type="under_review")["items"]) == 1
        with pytest.raises(ValidationError, match="future"):
            Flags.set("user", user.id, admin, flag_type="vip", reason="r", expires_at=utcnow())
        Flags.set("user", user.id, admin, flag_type="under_review", reason="again",
                  expires_at=later + dt.timedelta(days=1))
        assert "under_review" in {f["flag_type"] for f in Flags.list_for("user", user.id,
                                                                         now=later)}

    def test_clear_and_refusals(self) -> None:
        admin, user = new_admin(), make_user()
        with pytest.raises(NotFoundError):
            Flags.set("user", "no-such-user", admin, flag_type="vip", reason="r")
        with pytest.raises(NotFoundError):
            Flags.set("tenant", user.id, admin, flag_type="vip", reason="r")  # a user's id is no tenant
        with pytest.raises(PermissionDeniedError):  # the actor must exist
            Flags.set("user", user.id, "no-such-admin", flag_type="vip", reason="r")
        for bad in (("robot", user.id, "vip"), ("user", user.id, "cool"), ("user", "", "vip")):
            with pytest.raises(ValidationError):
                target_type, target_id, flag_type = bad
                Flags.set(target_type, target_id, admin, flag_type=flag_type, reason="r")
        assert AdminFlag.select().count() == 0 and actions(admin_user=admin) == []
        Flags.set("user", user.id, admin, flag_type="do_not_contact", reason="asked")
        assert Flags.clear("user", user.id, admin, flag_type="do_not_contact") is True
        assert Flags.clear("user", user.id, admin, flag_type="do_not_contact") is False
        assert actions(target_id=user.id) == ["USER_FLAG_SET", "USER_FLAG_REMOVE"]
        with pytest.raises(ValidationError):
            Flags.clear("user", user.id, admin, flag_type="nope")

    def test_list_by_type_pages_newest_first(self) -> None:
        admin = new_admin()
        users = [make_user() for _ in range(5)]
        for user in users:
            Flags.set("user", user.id, admin, flag_type="at_risk", reason="churn")
        Flags.set("user", users[0].id, admin, flag_type="vip", reason="big")
        seen, cursor = [], None
        while True:
            page = Flags.list_by_type(flag_type="at_risk", limit=2, cursor=cursor)
            seen += [f["target_id"] for f in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [u.id for u in reversed(users)]

    def test_a_failed_audit_leaves_no_flag(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import datalayer.queries.admin.flags as module

        admin, user = new_admin(), make_user()

        def broken(*args, **kwargs):
            raise ConflictError("audit store refused")

        monkeypatch.setattr(module, "audit", broken)
        with pytest.raises(ConflictError):
            Flags.set("user", user.id, admin, flag_type="vip", reason="r")
        assert AdminFlag.select().count() == 0


@pytest.mark.usefixtures("txn")
class TestNotes:
    def test_add_list_and_target_kinds(self) -> None:
        admin, user, tenant = new_admin(), make_user(), make_tenant()
        notes = [Notes.add("user", user.id, admin, note=f"note {i}") for i in range(3)]
        tenant_note = Notes.add("tenant", tenant.id, admin, note="tenant note")
        assert notes[0]["user_id"] == user.id and tenant_note["tenant_id"] == tenant.id
        page = Notes.list_for("user", user.id, limit=2)
        assert [n["note"] for n in page["items"]] == ["note 2", "note 1"]
        rest = Notes.list_for("user", user.id, limit=2, cursor=page["next_cursor"])
        assert [n["note"] for n in rest["items"]] == ["note 0"] and rest["next_cursor"] is None
        assert [n["id"] for n in Notes.list_for("tenant", tenant.id)["items"]] == [
            tenant_note["id"]]
        assert actions(target_id=user.id) == ["USER_NOTE_ADD"] * 3
        assert actions(target_id=tenant.id) == ["TENANT_NOTE_ADD"]
        with pytest.raises(NotFoundError):
            Notes.add("tenant", user.id, admin, note="a user's id is no tenant")
        for bad in (("robot", user.id, admin, "x"), ("user", user.id, admin, ""),
                    ("user", user.id, admin, "x" * 10_001), ("user", user.id, admin, None)):
            with pytest.raises(ValidationError):
                target_type, target_id, author, note = bad
                Notes.add(target_type, target_id, author, note=note)  # type: ignore[arg-type]
        assert AdminUserNote.select().count() == 3

    def test_only_the_author_edits(self) -> None:
        author, other, user = new_admin(), new_admin("admin_roles:write"), make_user()
        note = Notes.add("user", user.id, author, note="first")
        with pytest.raises(PermissionDeniedError, match="author"):
            Notes.edit("user", note["id"], other, note="hijacked")
        assert AdminUserNote.get_by_id(note["id"]).note == "first"
        edited = Notes.edit("user", note["id"], author, note="second")
        assert edited["note"] == "second" and edited["updated_at"] > note["updated_at"]
        with pytest.raises(NotFoundError):
            Notes.edit("user", "no-such-note", author, note="x")
        with pytest.raises(NotFoundError):  # a user note is not a tenant note
            Notes.edit("tenant", note["id"], author, note="x")
        assert actions(target_id=user.id) == ["USER_NOTE_ADD", "USER_NOTE_EDIT"]

    def test_delete_by_author_or_moderator(self) -> None:
        author, moderator, bystander = new_admin(), new_admin("admin_roles:write"), new_admin()
        tenant = make_tenant()
        a = Notes.add("tenant", tenant.id, author, note="a")
        b = Notes.add("tenant", tenant.id, author, note="b")
        with pytest.raises(PermissionDeniedError):
            Notes.delete("tenant", a["id"], bystander)
        assert Notes.delete("tenant", a["id"], author) is True
        assert Notes.delete("tenant", a["id"], author) is False
        assert Notes.delete("tenant", b["id"], moderator) is True
        assert AdminTenantNote.select().count() == 0
        deletes = audit_rows(action="TENANT_NOTE_DELETE")
        assert [(r.admin_user_id, r.metadata["author"]) for r in deletes] == [
            (author, author), (moderator, author)]

    def test_notes_go_with_their_user_and_failed_audits_leave_none(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import datalayer.queries.admin.notes as module

        admin, user = new_admin(), make_user()
        note = Notes.add("user", user.id, admin, note="kept until the user goes")

        def broken(*args, **kwargs):
            raise ConflictError("audit store refused")

        monkeypatch.setattr(module, "audit", broken)
        for call in (lambda: Notes.add("user", user.id, admin, note="x"),
                     lambda: Notes.edit("user", note["id"], admin, note="x"),
                     lambda: Notes.delete("user", note["id"], admin)):
            with pytest.raises(ConflictError):
                call()
        assert [n.note for n in AdminUserNote.select()] == ["kept until the user goes"]
        User.delete().where(User.id == user.id).execute()
        assert AdminUserNote.select().count() == 0


def test_concurrent_sets_of_one_flag_leave_one_flag(fresh_db: str) -> None:
    for threads in (2, 2, 2, 4, 8):
        admin, user = new_admin(), make_user()

        def set_flag(i: int, admin: str = admin, user: str = user.id) -> dict:
            return Flags.set("user", user, admin, flag_type="vip", reason=f"reason {i}")

        results = race(set_flag, threads=threads)
        assert len({r["id"] for r in results}) == 1
        flags = AdminFlag.select().where(AdminFlag.target_id == user.id)
        assert flags.count() == 1
        assert flags.get().reason in {f"reason {i}" for i in range(threads)}
        assert len(actions(target_id=user.id, action="USER_FLAG_SET")) == threads
