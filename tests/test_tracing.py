"""OpenTelemetry spans around the query functions, read back with the SDK's in-memory exporter."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from factories import make_user
from helpers import IS_PG

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode  # noqa: E402

import datalayer.queries  # noqa: E402
from datalayer import TodoQueries, ValidationError, WaitlistQueries  # noqa: E402
from datalayer.connection.tracing import row_count  # noqa: E402

pytestmark = pytest.mark.usefixtures("txn")

EXPORTER = InMemorySpanExporter()


def _set_provider(provider: Any) -> None:
    # The API lets a process set its provider once; tests reset it as the SDK's own do.
    trace._TRACER_PROVIDER_SET_ONCE = trace.Once()  # type: ignore[attr-defined]
    trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]
    if provider is not None:
        trace.set_tracer_provider(provider)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    _set_provider(provider)
    EXPORTER.clear()
    try:
        yield EXPORTER
    finally:
        _set_provider(None)
        EXPORTER.clear()


def only(exporter: InMemorySpanExporter, name: str) -> Any:
    found = [s for s in exporter.get_finished_spans() if s.name == name]
    assert len(found) == 1, [s.name for s in exporter.get_finished_spans()]
    return found[0]


def all_attribute_text(exporter: InMemorySpanExporter) -> str:
    parts = []
    for span in exporter.get_finished_spans():
        parts.append(json.dumps(dict(span.attributes or {}), default=str))
        parts.append(str(span.status.description))
        parts += [json.dumps(dict(e.attributes or {}), default=str) for e in span.events]
    return "\n".join(parts)


def test_a_query_call_is_a_span_named_after_it_with_backend_and_rows(spans) -> None:
    user = make_user()
    todo = TodoQueries.create(user.id, {"title": "secret plans for friday"})
    span = only(spans, "TodoQueries.create")
    assert span.kind == trace.SpanKind.CLIENT
    assert span.attributes["db.system"] == ("postgresql" if IS_PG else "sqlite")
    assert span.attributes["db.operation.name"] == "create"
    assert span.attributes["db.response.returned_rows"] == 1
    assert span.status.status_code == StatusCode.UNSET
    TodoQueries.create(user.id, {"title": "second"})
    page = TodoQueries.list_for_user(user.id, limit=10)
    assert only(spans, "TodoQueries.list_for_user").attributes["db.response.returned_rows"] == 2
    assert TodoQueries.find_by_id("no-such-id") is None
    assert only(spans, "TodoQueries.find_by_id").attributes["db.response.returned_rows"] == 0
    text = all_attribute_text(spans)
    for value in (user.id, user.email, todo["id"], "secret plans", page["items"][0]["id"]):
        assert value not in text  # names, backend and counts only: no parameter value


def test_an_error_marks_the_span_without_its_message(spans) -> None:
    user = make_user()
    with pytest.raises(ValidationError):
        TodoQueries.create(user.id, {"title": "x" * 300, "sneaky": "leak-me@example.com"})
    span = only(spans, "TodoQueries.create")
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "ValidationError"
    assert span.events == ()  # no recorded exception: its message quotes the input
    assert "leak-me" not in all_attribute_text(spans) and "sneaky" not in all_attribute_text(spans)


def test_nested_query_functions_nest_their_spans(spans) -> None:
    dto, created = WaitlistQueries.join("Nest@Example.com")
    assert created and row_count((dto, created)) == 1
    span = only(spans, "WaitlistQueries.join")
    assert span.attributes["db.response.returned_rows"] == 1
    assert "nest@example.com" not in all_attribute_text(spans)


def test_no_span_without_a_tracer_provider() -> None:
    _set_provider(None)
    EXPORTER.clear()
    user = make_user()
    TodoQueries.create(user.id, {"title": "t"})
    assert EXPORTER.get_finished_spans() == ()


def test_every_public_query_function_is_traced() -> None:
    missing = []
    for name in datalayer.queries.__all__:
        namespace = getattr(datalayer.queries, name)
        if not (isinstance(namespace, type) and name.endswith("Queries")):
            continue
        for attribute, member in vars(namespace).items():
            if attribute.startswith("_") or not isinstance(member, staticmethod | classmethod):
                continue
            if not getattr(member.__func__, "__datalayer_traced__", False):
                missing.append(f"{name}.{attribute}")
    assert missing == []


def test_without_the_extra_nothing_is_wrapped() -> None:
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "from datalayer import TodoQueries\n"
        "from datalayer.connection.tracing import available\n"
        "fn = TodoQueries.__dict__['create'].__func__\n"
        "print(available(), hasattr(fn, '__datalayer_traced__'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("result", "count"),
    [
        (None, 0),
        (True, 1),
        (False, 0),
        (7, 7),
        ([1, 2, 3], 3),
        ({"items": [1, 2], "next_cursor": None}, 2),
        ({"id": "x"}, 1),
        (({"id": "x"}, "token"), 1),
        ("text", None),
    ],
)
def test_row_count(result: Any, count: int | None) -> None:
    assert row_count(result) == count
