"""Webhooks delivered out of order, more than once, from several threads at once.

Each subscription gets a stream of events with increasing ``occurred_at`` (plus a tie
and an event of an ignored type); every event is delivered 1-3 times; the deliveries
are shuffled and ingested by 4 threads on their own connections. The final state must
equal the in-order result — the newest event's state — with one recorded row per event.
Runs on both backends; on PostgreSQL it is what exercises the row lock and the
``ON CONFLICT`` guards (SQLite serializes writers).
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections import Counter, defaultdict
from typing import Any

import pytest
from factories import make_tenant

from datalayer import SubscriptionEventQueries, db
from datalayer.models import Subscription, SubscriptionEvent
from datalayer.models.subscriptions import SUBSCRIPTION_STATUSES
from datalayer.schemas.subscriptions import PROVIDER_KEYS, neutral_event_type

THREADS = 4
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
STATE = ("status", "plan_id", "plan_name", "current_period_end", "cancel_at_period_end")


def event_stream(
    rng: random.Random, tenant_ids: list[str], events_each: int
) -> list[dict[str, Any]]:
    """Every subscription's events, in provider time order."""
    events = []
    for s in range(len(tenant_ids)):
        provider = ("polar", "revenuecat")[s % 2]
        at = T0
        for n in range(events_each):
            if n != 6:  # event 6 happens at the same time as event 5: a tie
                at += dt.timedelta(minutes=rng.randint(1, 600))
            events.append(
                {
                    "provider": provider,
                    "event_id": f"evt_{rng.getrandbits(40):010x}",
                    "event_type": "customer.updated" if n == 9 else "subscription.updated",
                    "occurred_at": at.isoformat(),
                    "tenant_id": tenant_ids[s],
                    "payload": {"n": n},
                    "subscription": {
                        PROVIDER_KEYS[provider]: f"sub_{s}",
                        "status": rng.choice(SUBSCRIPTION_STATUSES),
                        "plan_id": rng.choice(("basic", "pro", "team")),
                        "plan_name": rng.choice((None, "Monthly", "Yearly")),
                        "current_period_end": (at + dt.timedelta(days=30)).isoformat(),
                        "cancel_at_period_end": rng.random() < 0.3,
                    },
                }
            )
    return events


def expected_states(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The in-order result: per subscription, the state of its newest relevant event."""
    newest: dict[str, dict[str, Any]] = {}
    for e in events:
        if neutral_event_type(e["provider"], e["event_type"]) is None:
            continue
        key = e["subscription"][PROVIDER_KEYS[e["provider"]]]
        rank = (dt.datetime.fromisoformat(e["occurred_at"]), e["event_id"])
        if key not in newest or rank > newest[key]["rank"]:
            newest[key] = {"rank": rank, **e}
    return {
        key: {
            "tenant_id": e["tenant_id"],
            "last_event_at": e["rank"][0],
            "status": e["subscription"]["status"],
            "plan_id": e["subscription"]["plan_id"],
            "plan_name": e["subscription"]["plan_name"],
            "current_period_end": dt.datetime.fromisoformat(
                e["subscription"]["current_period_end"]
            ),
            "cancel_at_period_end": e["subscription"]["cancel_at_period_end"],
        }
        for key, e in newest.items()
    }


def deliver_concurrently(deliveries: list[dict[str, Any]]) -> tuple[list[tuple], list]:
    """Ingest the deliveries from THREADS threads; return (event_id, outcome) pairs and errors."""
    results: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    pending = iter(deliveries)
    barrier = threading.Barrier(THREADS)

    def worker() -> None:
        try:
            barrier.wait()
            while True:
                with lock:
                    e = next(pending, None)
                if e is None:
                    return
                outcome = SubscriptionEventQueries.ingest(e)
                with lock:
                    results.append((e["event_id"], outcome))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results, errors


def final_states() -> dict[str, dict[str, Any]]:
    states = {}
    for sub in Subscription.select():
        key = sub.polar_subscription_id or sub.revenuecat_original_transaction_id
        states[key] = {
            "tenant_id": sub.tenant_id,
            "last_event_at": sub.last_event_at,
            **{column: getattr(sub, column) for column in STATE},
        }
    return states


@pytest.mark.parametrize(
    ("seed", "subscriptions", "events_each"), [(1, 5, 12), (2, 5, 12), (3, 5, 12), (4, 2, 20)]
)
def test_shuffled_duplicated_concurrent_deliveries_converge(
    fresh_db: str, seed: int, subscriptions: int, events_each: int
) -> None:
    rng = random.Random(seed)
    tenant_ids = [make_tenant().id for _ in range(subscriptions)]
    events = event_stream(rng, tenant_ids, events_each)
    deliveries = [e for e in events for _ in range(rng.randint(1, 3))]
    rng.shuffle(deliveries)

    results, errors = deliver_concurrently(deliveries)

    assert errors == []
    assert len(results) == len(deliveries)
    assert final_states() == expected_states(events)
    # One recorded row per event; every other delivery was reported as a duplicate.
    rows = {r.event_id: r for r in SubscriptionEvent.select()}
    assert len(rows) == len(events) == SubscriptionEvent.select().count()
    delivered = Counter(e["event_id"] for e in deliveries)
    outcomes: dict[str, list[str]] = defaultdict(list)
    for event_id, outcome in results:
        outcomes[event_id].append(outcome)
    subscription_ids = {s.id for s in Subscription.select()}
    for e in events:
        got = outcomes[e["event_id"]]
        first = [o for o in got if o != "duplicate_ignored"]
        assert len(first) == 1, (e["event_id"], got)
        assert got.count("duplicate_ignored") == delivered[e["event_id"]] - 1
        assert rows[e["event_id"]].outcome == first[0]
        if e["event_type"] == "customer.updated":
            # Linked when its subscription already existed, else recorded unlinked.
            assert first[0] == "ignored_type"
            assert rows[e["event_id"]].subscription_id in subscription_ids | {None}
        else:
            assert first[0] in ("applied", "stale_ignored")
            assert rows[e["event_id"]].subscription_id in subscription_ids


def test_bursts_of_newer_events_leave_the_newest_state(fresh_db: str) -> None:
    """A focused race: THREADS newer events for one subscription at the same instant.

    Each thread reads ``last_event_at`` before the others commit; only the row lock makes
    the later ones see the newest state. Without it the last committer wins, which is the
    newest event only about once in THREADS rounds.
    """
    tenant_id = make_tenant().id
    base = event_stream(random.Random(0), [tenant_id], 1)[0]
    assert SubscriptionEventQueries.ingest(base) == "applied"
    start = dt.datetime.fromisoformat(base["occurred_at"])
    for round_ in range(12):
        burst = []
        for k in range(THREADS):
            e = {
                **base,
                "event_id": f"burst_{round_}_{k}",
                "subscription": {**base["subscription"], "plan_id": f"plan_{round_}_{k}"},
            }
            e["occurred_at"] = (start + dt.timedelta(hours=round_ + 1, minutes=k)).isoformat()
            burst.append(e)
        results, errors = deliver_concurrently(burst[::-1] if round_ % 2 else burst)
        assert errors == []
        assert sorted(o for _, o in results).count("applied") >= 1
        sub = Subscription.get(Subscription.polar_subscription_id == "sub_0")
        assert sub.plan_id == f"plan_{round_}_{THREADS - 1}", f"round {round_}"
