"""Races on the tenant domain, with real threads on a database of the test's own.

Each thread has its own connection (peewee connections are thread-local); a barrier
releases them together so their statements interleave. On PostgreSQL the guards under
test are row locks and conditional statements; on SQLite, where BEGIN IMMEDIATE lets one
writer in at a time, the same tests check that the serialized writers still agree.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from factories import add_member, make_tenant, make_user
from helpers import race

from datalayer import (
    ConflictError,
    DataLayerError,
    NotFoundError,
    PermissionDeniedError,
    TenantActivityQueries,
    TenantInviteQueries,
    TenantMemberQueries,
)
from datalayer.models import TenantActivityDaily, TenantInvite, TenantMember

pytestmark = pytest.mark.usefixtures("fresh_db")

Members = TenantMemberQueries


def _split(results: list[Any]) -> tuple[list[Any], list[BaseException]]:
    errors = [r for r in results if isinstance(r, BaseException)]
    unexpected = [e for e in errors if not isinstance(e, DataLayerError)]
    assert not unexpected, unexpected
    return [r for r in results if not isinstance(r, BaseException)], errors


# Two owners, a and b; two requests at once that would each take one of them away.
OWNER_RACES: dict[str, Callable[[str, str, str], tuple[Callable[[], Any], ...]]] = {
    "both leave": lambda t, a, b: (lambda: Members.leave(t, a), lambda: Members.leave(t, b)),
    "remove each other": lambda t, a, b: (
        lambda: Members.remove(t, b, a),
        lambda: Members.remove(t, a, b),
    ),
    "demote each other": lambda t, a, b: (
        lambda: Members.change_role(t, b, a, role="admin"),
        lambda: Members.change_role(t, a, b, role="member"),
    ),
    "leave while demoting the other": lambda t, a, b: (
        lambda: Members.leave(t, a),
        lambda: Members.change_role(t, b, a, role="admin"),
    ),
}


@pytest.mark.parametrize("scenario", list(OWNER_RACES))
def test_racing_requests_never_remove_the_last_owner(scenario: str) -> None:
    for _ in range(8):
        a, b = make_user(), make_user()
        tenant = make_tenant(a)
        add_member(tenant, b, role="owner")
        add_member(tenant, make_user(), role="admin")
        calls = OWNER_RACES[scenario](tenant.id, a.id, b.id)
        successes, errors = _split(race(lambda i, c=calls: c[i](), len(calls), capture=True))
        assert len(successes) == 1, (scenario, errors)
        assert isinstance(errors[0], ConflictError | PermissionDeniedError | NotFoundError)
        assert "transaction conflict" not in str(errors[0])  # no deadlock
        assert Members.count_owners(tenant.id) == 1


def test_concurrent_accepts_of_one_invite_let_exactly_one_in() -> None:
    for _ in range(20):
        owner, invitee = make_user(), make_user(email_verified=True)
        tenant = make_tenant(owner)
        invite, token = TenantInviteQueries.create(tenant.id, owner.id, email=invitee.email)
        accept = partial(TenantInviteQueries.accept, token, invitee.id)
        results = race(lambda _, call=accept: call(), capture=True)
        successes, errors = _split(results)
        assert len(successes) == 1
        assert successes[0]["user_id"] == invitee.id
        assert all(isinstance(e, ConflictError) for e in errors)
        # The invite's claim stopped the others, not the membership's unique constraint.
        assert not [e for e in errors if "already a member" in str(e)], errors
        memberships = TenantMember.select().where(
            (TenantMember.tenant == tenant.id) & (TenantMember.user == invitee.id)
        )
        assert memberships.count() == 1
        assert TenantInvite.get_by_id(invite["id"]).status == "accepted"


def test_accept_racing_revoke_never_both_succeed() -> None:
    for _ in range(15):
        owner = make_user()
        tenant = make_tenant(owner)
        invitees = [make_user(email_verified=True) for _ in range(3)]
        invites = [TenantInviteQueries.create(tenant.id, owner.id, email=u.email) for u in invitees]
        calls: list[Callable[[], Any]] = []
        for user, (invite, token) in zip(invitees, invites, strict=True):
            calls.append(partial(TenantInviteQueries.accept, token, user.id))
            calls.append(partial(TenantInviteQueries.revoke, invite["id"], owner.id))
        results = race(lambda i, c=calls: c[i](), len(calls), capture=True)
        _split(results)
        for i, (user, (invite, _)) in enumerate(zip(invitees, invites, strict=True)):
            accepted, revoked = results[2 * i], results[2 * i + 1]
            won = [r for r in (accepted, revoked) if not isinstance(r, BaseException)]
            assert len(won) == 1, (accepted, revoked)
            status = TenantInvite.get_by_id(invite["id"]).status
            is_member = Members.find(tenant.id, user.id) is not None
            if won[0] is accepted:
                assert (status, is_member) == ("accepted", True)
            else:
                assert (status, is_member) == ("revoked", False)


def test_concurrent_activity_records_lose_no_count() -> None:
    tenant = make_tenant()

    def record_50() -> None:
        for _ in range(50):
            TenantActivityQueries.record(tenant.id, events=1, active_users=2)

    _split(race(lambda _: record_50(), capture=True))
    rows = list(TenantActivityDaily.select().where(TenantActivityDaily.tenant == tenant.id))
    assert len(rows) == 1
    assert (rows[0].event_count, rows[0].active_users) == (400, 800)
