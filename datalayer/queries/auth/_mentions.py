"""Finding a user's id, email and name where others wrote them (UserQueries.erase/export).

JSON values the library stores (notification data, billing payloads, audit and
impersonation metadata) are scrubbed by ``erase``: every string that holds one of the
user's identifiers has it replaced by ``[erased]``. Free text written by other people
(notes, their todos, notification titles) is not rewritten by a program: ``erase``
lists it, by table, row and column, for a person to review.

Rows are first narrowed in SQL (a case-insensitive ``LIKE`` on the column's text,
JSON-escaped forms included, as each backend stores JSON differently), then checked
exactly in Python: an erasure is rare, and reads a table once per column searched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import peewee

from datalayer import models as m
from datalayer.schemas.auth import ReviewItem

ERASED = "[erased]"
MIN_NAME = 3  # a shorter name would match half of every text: ids and emails still count


class Needles:
    """The user's identifiers, matched case-insensitively."""

    def __init__(self, user_id: str, email: str | None, name: str | None) -> None:
        words = [user_id, email or ""]
        if name and len(name.strip()) >= MIN_NAME:
            words.append(name.strip())
        self.words = tuple(w for w in dict.fromkeys(words) if w)
        self._pattern = re.compile("|".join(re.escape(w) for w in self.words), re.IGNORECASE)

    def likes(self) -> list[str]:
        """The forms to look for in a column's text: as written and as JSON escapes them."""
        forms = {w.lower() for w in self.words}
        forms |= {json.dumps(w)[1:-1].lower() for w in self.words}
        return sorted(forms)

    def found_in(self, value: Any) -> bool:
        """Tell whether a text or JSON value mentions the user."""
        if value is None:
            return False
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return self._pattern.search(text) is not None

    def scrub(self, value: Any) -> Any:
        """Return the text or JSON value with every mention replaced by ``[erased]``."""
        if isinstance(value, str):
            return self._pattern.sub(ERASED, value)
        if isinstance(value, list):
            return [self.scrub(item) for item in value]
        if isinstance(value, dict):
            return {self.scrub(k): self.scrub(v) for k, v in value.items()}
        return value


def mentioning(
    model: Any, columns: Iterable[str], needles: Needles, where: Any = None
) -> list[Any]:
    """Return the rows (id first, then ``columns``) whose columns mention the user."""
    fields = [model._meta.columns[c] for c in columns]
    condition: Any = None
    for field in fields:
        text = peewee.fn.LOWER(peewee.Cast(field, "TEXT"))
        for form in needles.likes():
            term = text.contains(form)
            condition = term if condition is None else condition | term
    query = model.select(model._meta.primary_key, *fields).where(condition)
    if where is not None:
        query = query.where(where)
    rows = query.order_by(model._meta.primary_key).tuples()
    return [row for row in rows if any(needles.found_in(v) for v in row[1:])]


def scrub_json(model: Any, column: str, needles: Needles) -> int:
    """Scrub the user's identifiers out of a JSON column, row by row; return the rows changed."""
    field = model._meta.columns[column]
    rows = mentioning(model, [column], needles)
    for row_id, value in rows:
        model.update({field: needles.scrub(value)}).where(
            model._meta.primary_key == row_id
        ).execute()
    return len(rows)


# Free text other people write: listed for review, never rewritten by a program.
FREE_TEXT: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Tenant", ("name",)),
    ("Todo", ("title", "description")),
    ("Notification", ("title", "body")),
    ("AdminUserNote", ("note",)),
    ("AdminTenantNote", ("note",)),
    ("AdminFlag", ("custom_label", "reason")),
    ("NotificationDelivery", ("error",)),
)


def review(needles: Needles) -> list[ReviewItem]:
    """Every free-text value by someone else that still mentions the user."""
    items: list[ReviewItem] = []
    for model_name, columns in FREE_TEXT:
        model = getattr(m, model_name)
        for row in mentioning(model, columns, needles):
            for column, value in zip(columns, row[1:], strict=True):
                if needles.found_in(value):
                    items.append(
                        {"table": model._meta.table_name, "row_id": row[0], "column": column}
                    )
    return items


__all__ = ["ERASED", "FREE_TEXT", "Needles", "ReviewItem", "mentioning", "review", "scrub_json"]
