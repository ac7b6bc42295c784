"""The 15 notification types of the original's catalogue: the create schema takes exactly
these; the database checks only the shape, so other writers' rows stay readable."""

from __future__ import annotations

import peewee
import pytest
from factories import make_user

from datalayer import NotificationQueries, ValidationError, db
from datalayer.models import Notification
from datalayer.models.notifications import NOTIFICATION_TYPES

pytestmark = pytest.mark.usefixtures("txn")

CATALOGUE = (
    "direct_message", "milestone", "kudos_sent", "todo_assigned", "todo_nudge",
    "todo_completed", "event_created", "event_reminder", "event_changed", "achievement",
    "limit_alert", "survey_created", "member_joined", "member_invited", "settings_changed",
)


def test_the_catalogue_is_the_originals() -> None:
    assert sorted(NOTIFICATION_TYPES) == sorted(CATALOGUE) and len(set(CATALOGUE)) == 15


def test_notify_takes_every_type_of_the_catalogue_and_no_other() -> None:
    user = make_user()
    for kind in CATALOGUE:
        assert NotificationQueries.notify(user.id, type=kind, title="t", body="b")["type"] == kind
    assert Notification.select().where(Notification.recipient_user == user.id).count() == 15


@pytest.mark.parametrize("kind", ["mention", "system_announcement", "test", "Direct_Message", ""])
def test_notify_refuses_a_type_outside_the_catalogue(kind: str) -> None:
    user = make_user()
    with pytest.raises(ValidationError) as info:
        NotificationQueries.notify(user.id, type=kind, title="t", body="b")
    assert "type" in info.value.messages
    assert Notification.select().where(Notification.recipient_user == user.id).count() == 0


def test_the_database_checks_the_shape_only() -> None:
    user = make_user()
    # The original's dashboard writes 'test'; older rows may hold other slugs.
    for kind in ("test", "mention", "a", "x" * 64, "limit_alert_2"):
        Notification.insert(recipient_user=user.id, type=kind, title="t", body="b").execute()
    inbox = NotificationQueries.inbox(user.id, limit=10)["items"]
    assert {n["type"] for n in inbox} == {"test", "mention", "a", "x" * 64, "limit_alert_2"}
    for kind in ("", "Test", "has space", "9lives", "x" * 65, "dash-ed", "ünï"):
        with pytest.raises(peewee.IntegrityError), db.atomic():
            Notification.insert(recipient_user=user.id, type=kind, title="t", body="b").execute()
