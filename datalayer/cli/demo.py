"""``datalayer demo``: one real lifecycle through the public API, step by step.

Migrates, then: two users sign up, one creates a tenant and invites the other, the
invite is accepted, todos are created and completed, notifications are sent and a
delivery worker drains them (one send fails once and is retried), billing webhook
events arrive twice and out of order, an admin grants a role and the audit trail shows
it. Ends with the row count of every table. Re-runnable: users and the admin are found
again; each run makes a tenant and events of its own.

It runs on a database of its own, ``./datalayer-demo.sqlite3``, whatever
``DATABASE_URL`` says; ``--database`` picks another, which it refuses while that
database holds anything the demo did not write (unless ``--yes``).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from typing import Any, cast

import click

from datalayer import db, init_db
from datalayer.cli.demo_guard import DEMO_URL, foreign_data
from datalayer.connection.database import describe_target
from datalayer.errors import PermissionDeniedError
from datalayer.evolve.migrate import migrate
from datalayer.models import ALL_MODELS
from datalayer.queries import (
    AdminFlagQueries,
    AdminNoteQueries,
    AdminRoleQueries,
    AdminSessionQueries,
    AdminUserQueries,
    AuditLogQueries,
    DeliveryQueries,
    ImpersonationQueries,
    NotificationQueries,
    SessionQueries,
    SubscriptionEventQueries,
    SubscriptionQueries,
    TenantActivityQueries,
    TenantInviteQueries,
    TenantMemberQueries,
    TenantQueries,
    TodoQueries,
    UserActivityQueries,
    UserQueries,
    VerificationQueries,
    WaitlistQueries,
)
from datalayer.redact import redact_url
from datalayer.schemas.subscriptions import BillingEvent
from datalayer.types import AdminUserId

Echo = Callable[[str], None]

def _user(email: str, name: str, echo: Echo) -> Any:
    _, created = WaitlistQueries.join(email)
    echo(f"  {email} {'joined' if created else 'is already on'} the waitlist")
    user = UserQueries.find_by_email(email)
    if user:
        echo(f"  {name} is back ({email})")
    else:
        user = UserQueries.create({"name": name, "email": email})
        echo(f"  {name} signed up ({email}, id {user['id'][:8]}…)")
    now = dt.datetime.now(dt.UTC)
    code = uuid.uuid4().hex[:6]
    VerificationQueries.create(f"email:{email}", code,
                               expires_at=now + dt.timedelta(minutes=10))
    first = VerificationQueries.consume(f"email:{email}", code)
    again = VerificationQueries.consume(f"email:{email}", code)
    echo(f"  verification code used: {first}; used again: {again}")
    if first:  # the code proves the address: invites to it can be accepted
        user = UserQueries.update(user["id"], {"email_verified": True})
    SessionQueries.create(user["id"], token=uuid.uuid4().hex,
                          expires_at=now + dt.timedelta(days=7),
                          user_agent="datalayer-demo")
    UserQueries.touch_last_active(user["id"])
    UserActivityQueries.record(user["id"], sessions=1, features=("demo",))
    return user


def _team(ada: dict[str, Any], grace: dict[str, Any], run: str, echo: Echo) -> Any:
    team = TenantQueries.create_with_owner(ada["id"], {"name": f"Demo team {run}",
                                                       "type": "team"})
    echo(f"  {ada['name']} created tenant {team['name']!r} and owns it")
    invite, token = TenantInviteQueries.create(team["id"], ada["id"], email=grace["email"])
    echo(f"  {ada['name']} invited {invite['email']} (token shown once, stored as SHA-256)")
    member = TenantInviteQueries.accept(token, grace["id"])
    echo(f"  {grace['name']} accepted and joined as {member['role']}")
    TenantActivityQueries.record(team["id"], events=2, new_members=1)
    try:
        TenantInviteQueries.accept(token, grace["id"])
    except Exception as exc:  # noqa: BLE001 - shown to the reader
        echo(f"  accepting the same invite again is refused: {type(exc).__name__}")
    page = TenantMemberQueries.list_for_tenant(team["id"])
    names = ", ".join(f"{m['name']} ({m['role']})" for m in page["items"])
    echo(f"  members: {names}")
    return team


def _todos(ada: dict[str, Any], grace: dict[str, Any], team: dict[str, Any],
           echo: Echo) -> None:
    titles = ["Draft the launch plan", "Review billing webhooks", "Invite the beta users"]
    todos = [TodoQueries.create(ada["id"], {"title": t}, tenant_id=team["id"]) for t in titles]
    TodoQueries.create(grace["id"], {"title": "Read the onboarding docs"}, tenant_id=team["id"])
    echo(f"  {len(todos) + 1} todos created in {team['name']!r}")
    done = TodoQueries.toggle_complete(todos[0]["id"], ada["id"])
    echo(f"  {ada['name']} completed {done['title']!r}")
    page = TodoQueries.list_for_user(ada["id"], tenant_id=team["id"], completed=False)
    echo(f"  {ada['name']} has {len(page['items'])} open todos left")


def _notifications(ada: dict[str, Any], grace: dict[str, Any], team: dict[str, Any],
                   echo: Echo) -> None:
    sent = [
        NotificationQueries.notify(ada["id"], type="member_joined", title="Grace joined",
                                   body=f"{grace['name']} joined {team['name']}.",
                                   tenant_id=team["id"], actor_user_id=grace["id"]),
        NotificationQueries.notify(grace["id"], type="todo_completed", title="Todo completed",
                                   body="Draft the launch plan is done.",
                                   tenant_id=team["id"], actor_user_id=ada["id"]),
    ]
    channels = sum(len(n["deliveries"]) for n in sent)
    echo(f"  {len(sent)} notifications queued with {channels} deliveries")
    _drain(echo)
    unread = NotificationQueries.unread_count(ada["id"], tenant_id=team["id"])
    echo(f"  {ada['name']} has {unread} unread notification(s) in {team['name']!r}")


def _drain(echo: Echo) -> None:
    """A delivery worker: claim, send (the first email fails once), mark, until empty."""
    failed_once: set[str] = set()
    worker = f"demo-worker-{uuid.uuid4().hex[:6]}"
    for _ in range(20):
        claimed = DeliveryQueries.claim(worker, limit=10, lease_seconds=30)
        if not claimed:
            break
        for delivery in claimed:
            if delivery["channel"] == "email" and not failed_once:
                failed_once.add(delivery["id"])
                DeliveryQueries.mark_failed(delivery["id"], worker, error="SMTP 451: try again",
                                            retry_base_seconds=0.05,
                                            attempts=delivery["attempts"])
                echo(f"  worker: {delivery['channel']} send failed, retry scheduled "
                     f"(attempt {delivery['attempts']})")
                continue
            DeliveryQueries.mark_sent(delivery["id"], worker,
                                      provider_message_id=f"msg-{delivery['id'][:8]}",
                                      attempts=delivery["attempts"])
            echo(f"  worker: {delivery['channel']} sent (attempt {delivery['attempts']})")
        time.sleep(0.12)  # let the retry come due


def _billing(team: dict[str, Any], run: str, echo: Echo) -> None:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    base = {"provider": "polar", "tenant_id": team["id"], "payload": {"demo": True}}
    state = {"polar_subscription_id": f"sub_{run}", "plan_id": "pro", "plan_name": "Pro",
             "current_period_start": start.isoformat(),
             "current_period_end": (start + dt.timedelta(days=30)).isoformat()}
    events = {
        "created": {**base, "event_id": f"evt_{run}_1", "event_type": "subscription.created",
                    "occurred_at": start.isoformat(),
                    "subscription": {**state, "status": "active"}},
        "past_due": {**base, "event_id": f"evt_{run}_2", "event_type": "subscription.past_due",
                     "occurred_at": (start + dt.timedelta(minutes=1)).isoformat(),
                     "subscription": {**state, "status": "past_due"}},
        "renewed": {**base, "event_id": f"evt_{run}_3", "event_type": "subscription.renewed",
                    "occurred_at": (start + dt.timedelta(minutes=2)).isoformat(),
                    "subscription": {**state, "status": "active"}},
    }
    for name in ("created", "renewed", "created", "past_due", "renewed"):
        outcome = SubscriptionEventQueries.ingest(cast(BillingEvent, events[name]))
        echo(f"  webhook {events[name]['event_id']} ({name}) -> {outcome}")
    current = SubscriptionQueries.current_for_tenant(team["id"])
    access = SubscriptionQueries.has_access(team["id"])
    echo(f"  subscription is {current['status'] if current else 'missing'}; access: {access}")


def _stepped_up_session(admin_id: AdminUserId) -> str:
    """Open an admin session and step it up (the admin just re-authenticated); its token."""
    token = uuid.uuid4().hex
    AdminSessionQueries.create(admin_id, token=token,
                               expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=8),
                               user_agent="datalayer-demo")
    AdminSessionQueries.verify_step_up(token, ttl_seconds=900)
    return token


def _root() -> tuple[AdminUserId, str]:
    """The first admin (`datalayer admin bootstrap`) and a stepped-up session of theirs."""
    root = AdminUserQueries.find_by_email("root@example.com") or AdminUserQueries.bootstrap(
        "root@example.com", name="Root")
    return root["id"], _stepped_up_session(root["id"])


def _admin(ada: dict[str, Any], echo: Echo) -> None:
    root, root_token = _root()
    admin = AdminUserQueries.find_by_email("ops@example.com") or AdminUserQueries.create(
        root, {"email": "ops@example.com", "name": "Ops", "status": "active"})
    AdminRoleQueries.upsert_role("support_rw", root, name="Support (read/write)",
                                 permissions=["users:read", "users:write", "tenants:read",
                                              "tenants:write"])
    AdminRoleQueries.grant(admin["id"], root, role_key="support_rw", session_token=root_token,
                           reason="demo")
    AdminSessionQueries.revoke(root_token)
    echo("  root@example.com (made by `datalayer admin bootstrap`) granted ops support_rw")
    echo(f"  admin {admin['email']} holds: "
         f"{', '.join(AdminRoleQueries.permissions_for(admin['id']))}")
    AuditLogQueries.append(admin["id"], action="USER_UPDATE", target_type="user",
                           target_id=ada["id"],
                           reason="demo: looked at a user")
    grants = AuditLogQueries.list(admin_user_id=root, limit=2)["items"]
    for entry in [*grants, *AuditLogQueries.list(admin_user_id=admin["id"], limit=1)["items"]]:
        echo(f"  audit: {entry['created_at'][:19]} {entry['action']} "
             f"{entry['target_type']} {entry['target_id'] or ''}".rstrip())


def _console(ada: dict[str, Any], team: dict[str, Any], echo: Echo) -> None:
    """The admin console: a session with step-up, an impersonation, a flag and a note."""
    admin = AdminUserQueries.find_by_email("ops@example.com")
    assert admin is not None  # made by the previous step
    root, root_token = _root()
    AdminRoleQueries.upsert_role("impersonator", root, name="Impersonation",
                                 permissions=["users:impersonate"])
    AdminRoleQueries.grant(admin["id"], root, role_key="impersonator", session_token=root_token,
                           reason="demo")
    AdminSessionQueries.revoke(root_token)
    token = uuid.uuid4().hex
    AdminSessionQueries.create(admin["id"], token=token,
                               expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=8),
                               user_agent="datalayer-demo")
    try:
        AdminSessionQueries.require_step_up(token)
    except PermissionDeniedError:
        echo("  a sensitive action asks the admin to re-authenticate first (step-up)")
    AdminSessionQueries.verify_step_up(token, ttl_seconds=900)
    AdminSessionQueries.require_step_up(token)
    echo("  step-up verified: sensitive actions allowed for 15 minutes")
    session = ImpersonationQueries.start(ada["id"], admin["id"], reason="demo: support ticket #42",
                                         session_token=token, target_tenant_id=team["id"])
    echo(f"  impersonating {ada['name']} in {team['name']!r} ({session['scope']}, "
         f"until {session['expires_at'][11:19]} UTC)")
    try:
        ImpersonationQueries.check_write(session["id"])
    except PermissionDeniedError:
        echo("  a write during a read_only impersonation is refused")
    flag = AdminFlagQueries.set("tenant", team["id"], admin["id"], flag_type="vip",
                                reason="demo: design partner")
    AdminNoteQueries.add("user", ada["id"], admin["id"], note="Asked how to export her todos.")
    ImpersonationQueries.end(session["id"], admin["id"])
    AdminSessionQueries.revoke(token)
    echo(f"  flagged {team['name']!r} {flag['flag_type']}, noted a call with {ada['name']}, "
         "ended the impersonation, logged out")
    entries = AuditLogQueries.list(admin_user_id=admin["id"], limit=9)["items"]
    echo("  audit: " + ", ".join(e["action"] for e in reversed(entries)))


def row_counts() -> dict[str, int]:
    """Return the number of rows in every table."""
    return {m._meta.table_name: m.select().count() for m in ALL_MODELS}


def run_demo(url: str | None = None, echo: Echo = click.echo, *,
             yes: bool = False) -> dict[str, int]:
    """Migrate, walk the lifecycle, print each step; return the final row counts.

    ``url`` defaults to the demo's own database (``DEMO_URL``, not ``DATABASE_URL``).
    Raises ``click.ClickException`` (nothing written) when the database holds data the
    demo did not write, unless ``yes``.
    """
    url = url or DEMO_URL
    if not yes:
        found = foreign_data(url)
        if found:
            raise click.ClickException(
                f"refusing to run the demo on {redact_url(url)}: "
                f"it holds data that is not the demo's ({', '.join(found[:5])}"
                f"{', …' if len(found) > 5 else ''}). The demo migrates it and writes "
                f"users, tenants, billing events and an admin holding users:write into it. "
                f"Run it on a database of its own (the default, {DEMO_URL}, or an empty "
                "one), or pass --yes to write into this one anyway.")
    applied = migrate(url)
    database = init_db(url)
    echo(f"Database: {type(database).__name__} {database.database} "
         f"({len(applied)} migration(s) applied now)")
    run = uuid.uuid4().hex[:6]
    steps: list[tuple[str, Callable[[], Any]]] = []
    people: dict[str, dict[str, Any]] = {}
    context: dict[str, Any] = {}

    def sign_up() -> None:
        people["ada"] = _user("ada@example.com", "Ada Lovelace", echo)
        people["grace"] = _user("grace@example.com", "Grace Hopper", echo)

    steps = [
        ("Two users sign up", sign_up),
        ("A tenant, an invite, an acceptance",
         lambda: context.update(team=_team(people["ada"], people["grace"], run, echo))),
        ("Todos", lambda: _todos(people["ada"], people["grace"], context["team"], echo)),
        ("Notifications and a delivery worker",
         lambda: _notifications(people["ada"], people["grace"], context["team"], echo)),
        ("Billing webhooks, twice and out of order",
         lambda: _billing(context["team"], run, echo)),
        ("An admin grants a role; the audit trail", lambda: _admin(people["ada"], echo)),
        ("The admin console: step-up, impersonation, a flag and a note",
         lambda: _console(people["ada"], context["team"], echo)),
    ]
    for number, (title, step) in enumerate(steps, 1):
        echo(f"\n{number}. {title}")
        step()
    counts = row_counts()
    echo("\nRows per table")
    width = max(len(name) for name in counts)
    for name, count in counts.items():
        echo(f"  {name:<{width}}  {count:>6}")
    db.close()
    return counts


@click.command("demo")
@click.option("--database", "url", metavar="URL",
              help=f"Database URL. Default: the demo's own {DEMO_URL} "
                   "(DATABASE_URL is not used).")
@click.option("--yes", is_flag=True,
              help="Run even on a database that holds data the demo did not write.")
def demo_command(url: str | None, yes: bool) -> None:
    """Walk one real lifecycle through the public API (migrating first) and print it.

    Runs on a SQLite file of its own, ./datalayer-demo.sqlite3, with no configuration;
    --database URL runs it elsewhere (PostgreSQL), refusing a database that holds data
    the demo did not write unless --yes. Safe to run again.
    """
    if url is None:
        click.echo(describe_target(DEMO_URL)[: -len(" (--database)")]
                   + " - the demo's own database (DATABASE_URL is not used; "
                   "--database picks another)", err=True)
    else:
        click.echo(describe_target(url), err=True)
    run_demo(url, yes=yes)
