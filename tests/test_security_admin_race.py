"""Issue 23: the last active admin holding admin_roles:write stays, also when two admins
suspend each other at the same moment (real threads, separate connections).

The overlap is built: the first suspension holds its transaction open until the second
one has started; without the rights lock the second would read its actor as still
active and suspend the first admin too, leaving nobody to manage the console."""

from __future__ import annotations

import threading
import time
from typing import Any

from admin_console_helpers import ROLES_WRITE, new_admin
from helpers import race

from datalayer import AdminUserQueries, ConflictError, PermissionDeniedError, db
from datalayer.models import AdminUser


def test_two_admins_suspending_each_other_at_once_leave_one_active(fresh_db: str) -> None:
    for _ in range(3):
        a, b = new_admin(ROLES_WRITE), new_admin(ROLES_WRITE)
        first_written = threading.Event()

        def suspend(i: int, a: str = a, b: str = b, first: threading.Event = first_written) -> Any:
            if i == 0:  # a suspends b, and keeps the transaction open a moment
                with db.atomic():
                    row = AdminUserQueries.set_status(b, a, status="suspended")
                    first.set()
                    time.sleep(0.5)
                return row
            first.wait(timeout=30)  # b suspends a while a's change is uncommitted
            return AdminUserQueries.set_status(a, b, status="suspended")

        results = race(suspend, threads=2, capture=True)
        assert not isinstance(results[0], Exception), results
        assert isinstance(results[1], PermissionDeniedError | ConflictError), results
        assert AdminUser.get_by_id(a).status == "active"
        assert AdminUser.get_by_id(b).status == "suspended"
        # no active holder from this round is left for the next
        AdminUser.update(status="suspended").where(AdminUser.id.in_([a, b])).execute()
