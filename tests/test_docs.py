"""The documentation says what the code does: the reference pages are current, the README
stays a short first read, the billing event's TypedDict matches what ``ingest`` validates,
and the access table of the billing guide is what ``has_access`` answers."""

from __future__ import annotations

import datetime as dt
import importlib.util
import re
import typing
from pathlib import Path

import pytest

from datalayer import SubscriptionQueries, TenantQueries, UserQueries
from datalayer.models import Subscription
from datalayer.schemas.subscriptions import (
    BillingEvent,
    BillingSubscriptionState,
    IngestEventSchema,
    SubscriptionStateSchema,
)

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def _generator():  # docs/gen_reference.py, loaded from its path
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "docs" / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_reference_pages_are_current() -> None:
    gen = _generator()
    stale = [str(path.relative_to(ROOT)) for path, text in gen.pages().items()
             if not path.is_file() or path.read_text() != text]
    assert not stale, f"{stale}: run python docs/gen_reference.py"


def test_the_reference_index_lists_every_public_function() -> None:
    import datalayer

    index = (ROOT / "docs" / "reference" / "index.md").read_text()
    namespaces = [getattr(datalayer, n) for n in datalayer.__all__ if n.endswith("Queries")]
    listed = set(re.findall(r"^\| \[(\w+\.\w+)\]", index, re.M))
    expected = {f"{ns.__name__}.{name}" for ns in namespaces for name in vars(ns)
                if not name.startswith("_")}
    assert "TodoQueries.list_for_user" in listed
    assert listed == expected


def test_every_public_function_says_what_it_returns_and_raises() -> None:
    """The reference shows, for each function, what comes back and which errors leave it."""
    import inspect

    import datalayer

    bare = []
    for name in datalayer.__all__:
        namespace = getattr(datalayer, name)
        if not (inspect.isclass(namespace) and name.endswith("Queries")):
            continue
        for function in vars(namespace):
            doc = inspect.getdoc(getattr(namespace, function)) or ""
            if not function.startswith("_") and "Returns:" not in doc:
                bare.append(f"{name}.{function}")
    assert not bare, bare


def test_the_errors_page_documents_every_error() -> None:
    import inspect

    import datalayer.errors as errors

    page = (ROOT / "docs" / "reference" / "errors.md").read_text()
    classes = [name for name, value in vars(errors).items() if inspect.isclass(value)
               and issubclass(value, errors.DataLayerError) and value.__module__ == errors.__name__]
    missing = [name for name in classes if f"::: datalayer.errors.{name}\n" not in page]
    assert "ValidationError" in classes and not missing, missing


def test_the_readme_is_a_short_first_read() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    first = ("python3 -m venv .venv && . .venv/bin/activate && pip install . && "
             "datalayer demo")
    assert first in text and "requires Python 3.11+" in text
    assert "tox run-parallel -p 2" in text and "## Running the tests" in text


def test_no_page_sends_a_reader_into_the_tests() -> None:
    """Wheel users have no tests/: the pages describe the behaviour instead of linking it."""
    # The pages for the library's own developers may name its tests.
    for_developers = {"contributing.md", "architecture.md", "testing.md", "benchmarks.md"}
    pages = [README, *(p for p in sorted((ROOT / "docs").rglob("*.md"))
                       if p.name not in for_developers)]
    linked = {str(p.relative_to(ROOT)) for p in pages
              if re.search(r"\]\([^)]*tests/|`tests/\w+\.py`", p.read_text())}
    assert not linked, linked


def test_billing_event_typed_dict_matches_the_schema() -> None:
    event, state = IngestEventSchema(), SubscriptionStateSchema()
    assert set(BillingEvent.__annotations__) | set(BillingEvent.__required_keys__) == set(
        event.fields)
    assert set(BillingEvent.__required_keys__) == {
        name for name, field in event.fields.items() if field.required}
    assert set(typing.get_type_hints(BillingSubscriptionState)) == set(state.fields)
    assert not BillingSubscriptionState.__required_keys__  # which are needed depends on the event


NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
# The access table of docs/guides/billing.md, row by row: (status, columns, access).
ACCESS_TABLE = [
    ("active", {"current_period_end": NOW - 10 * DAY}, True),
    ("trialing", {"trial_end": NOW - 3 * DAY}, True),
    ("past_due", {"current_period_end": NOW - 2 * DAY}, True),
    ("past_due", {"current_period_end": NOW - 3 * DAY}, False),
    ("past_due", {}, False),
    ("canceled", {"current_period_end": NOW + 5 * DAY, "cancel_at_period_end": True}, True),
    ("canceled", {"current_period_end": NOW + 5 * DAY}, False),
    ("canceled", {"current_period_end": NOW + 5 * DAY, "cancel_at_period_end": False}, False),
    ("canceled", {"current_period_end": NOW, "cancel_at_period_end": True}, False),
    ("expired", {"current_period_end": NOW + 5 * DAY}, False),
    ("paused", {"current_period_end": NOW + 5 * DAY}, False),
]


@pytest.mark.parametrize(("status", "columns", "access"), ACCESS_TABLE)
def test_the_access_table_of_the_billing_guide(
        txn: None, status: str, columns: dict[str, object], access: bool) -> None:
    owner = UserQueries.create({"name": "Owner", "email": f"{status}@example.com"})
    tenant = TenantQueries.create_with_owner(owner["id"], {"name": "Billed"})
    assert SubscriptionQueries.has_access(tenant["id"], now=NOW) is False  # no subscription
    Subscription.create(tenant=tenant["id"], status=status, plan_id="pro", provider="polar",
                        polar_subscription_id=f"sub_{status}", **columns)
    assert SubscriptionQueries.has_access(tenant["id"], now=NOW) is access
