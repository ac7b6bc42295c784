"""The delivery queue's hand-written statements: the one-statement claim and the batch marks.

peewee cannot build these in one piece (a data-modifying CTE joined to the rows it
returned; ``UPDATE … FROM unnest(...)``), so they are written out once per backend with
named parameters, rendered once, and then only bound: no SQL building on the hot path,
one round trip each, and outside a transaction no BEGIN/COMMIT around it.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from typing import Any, TypeGuard, cast

from datalayer.connection.database import db, is_postgres
from datalayer.models.base import utcnow
from datalayer.queries.notifications._queue import D, check_attempts
from datalayer.schemas.base import check_id, require
from datalayer.schemas.notifications import (
    ClaimedDeliveryDTO,
    notification_delivery_dumper,
    notification_dumper,
)

MAX_BATCH = 10_000
_NAMED = re.compile(r"%\((\w+)\)s")


class HandWritten:
    """One statement written per backend with ``%(name)s`` parameters, bound at run time."""

    __slots__ = ("_order", "_sql")

    def __init__(self, *, postgres: str, sqlite: str | None) -> None:
        self._sql: dict[bool, str] = {}
        self._order: dict[bool, tuple[str, ...]] = {}
        for pg, text in ((True, postgres), (False, sqlite)):
            if text is None:
                continue
            names: list[str] = []
            placeholder = "%s" if pg else "?"

            def bind(match: re.Match[str], names: list[str] = names, p: str = placeholder) -> str:
                names.append(match.group(1))
                return p

            self._sql[pg] = _NAMED.sub(bind, text)
            self._order[pg] = tuple(names)

    def execute(self, values: dict[str, Any]) -> Any:
        """Run on the primary (these are writes) with ``values``; return the cursor."""
        pg = is_postgres()
        params = [values[name] for name in self._order[pg]]
        return db.obj.execute_sql(self._sql[pg], params)  # errors: DeliveryQueries' boundary


def _columns(alias: str, names: Sequence[str]) -> str:
    return ", ".join(f'{alias}."{name}"' for name in names)


_MARKED = """marked AS (
    UPDATE notification_deliveries AS d
    SET status = 'sent', sent_at = %(now)s, provider_message_id = v.message,
        updated_at = %(now)s
    FROM unnest(%(ids)s::text[], %(messages)s::text[], %(attempts)s::int[])
         AS v(id, message, attempts)
    WHERE d.id = v.id AND d.status = 'processing' AND d.locked_by = %(worker)s
      AND (v.attempts IS NULL OR d.attempts = v.attempts)
    RETURNING d.id
), """


@functools.cache
def claim_statement(channels: bool, marks: bool = False) -> HandWritten:
    """The PostgreSQL claim: lease the due rows, return them with notification and recipient.

    With ``marks``, the same statement first marks the worker's previous batch sent (as
    MARK_SENT_MANY does) and every row starts with how many it marked; when nothing is
    claimed, one row of NULLs still carries that count.
    """
    deliveries = notification_delivery_dumper.columns
    notes = notification_dumper.columns
    wanted = " AND channel = ANY(%(channels)s)" if channels else ""
    details = """claimed AS c
JOIN notifications AS n ON n.id = c.notification_id
JOIN "user" AS u ON u.id = n.recipient_user_id
LEFT JOIN notification_targets AS t ON t.user_id = n.recipient_user_id"""
    select = f"""SELECT {_columns("c", deliveries)}, {_columns("n", notes)},
       u.email, u.name, t.novu_subscriber_id, t.expo_push_token"""
    if marks:  # the marked rows are processing, the picked ones pending: never the same row
        final = f"""SELECT m.count, c.* FROM (SELECT count(*) AS count FROM marked) AS m
LEFT JOIN ({select}
FROM {details}) AS c ON true"""
    else:
        final = f"{select}\nFROM {details}"
    # MATERIALIZED: the locking pick runs once (inlined, it could be rescanned and lock
    # more than ``limit`` rows). The due index (next_attempt_at, id) WHERE pending serves
    # the ORDER BY … LIMIT directly: no tied row is read beyond the ones claimed.
    return HandWritten(
        postgres=f"""WITH {_MARKED if marks else ""}picked AS MATERIALIZED (
    SELECT id FROM notification_deliveries
    WHERE status = 'pending' AND next_attempt_at <= %(now)s{wanted}
    ORDER BY next_attempt_at, id LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE notification_deliveries AS d
    SET status = 'processing', attempts = d.attempts + 1, locked_by = %(worker)s,
        locked_at = %(now)s, next_attempt_at = %(lease_end)s, updated_at = %(now)s
    FROM picked WHERE d.id = picked.id
    RETURNING {_columns("d", deliveries)}
)
{final}""",
        sqlite=None,  # SQLite: RETURNING cannot feed a join; two statements in process
    )


def claimed_rows(rows: Sequence[Sequence[Any]]) -> list[ClaimedDeliveryDTO]:
    """Split the claim's rows into deliveries, each with its notification and recipient."""
    width = len(notification_delivery_dumper.columns)
    end = width + len(notification_dumper.columns)
    delivery_row, note_row = notification_delivery_dumper.row, notification_dumper.row
    claimed = []
    for values in sorted(rows, key=lambda values: values[0]):  # by id, as on SQLite
        delivery = cast("dict[str, Any]", delivery_row(values[:width]))
        notification = note_row(values[width:end])
        email, name, novu_id, push_token = values[end:]
        delivery["notification"] = notification
        delivery["recipient"] = {
            "user_id": notification["recipient_user_id"],
            "novu_subscriber_id": novu_id,
            "expo_push_token": push_token,
            "email": email,
            "name": name,
        }
        claimed.append(delivery)
    return claimed  # type: ignore[return-value]  # dicts filled key by key into the DTO shape


# One UPDATE for a claimed batch; each row keeps mark_sent's fence (this worker's lease,
# and the claim's attempts when given).
MARK_SENT_MANY = HandWritten(
    postgres="""UPDATE notification_deliveries AS d
SET status = 'sent', sent_at = %(now)s, provider_message_id = v.message, updated_at = %(now)s
FROM unnest(%(ids)s::text[], %(messages)s::text[], %(attempts)s::int[])
     AS v(id, message, attempts)
WHERE d.id = v.id AND d.status = 'processing' AND d.locked_by = %(worker)s
  AND (v.attempts IS NULL OR d.attempts = v.attempts)""",
    # SQLite 3.33+ (UPDATE … FROM): the batch as one JSON array of [id, message, attempts].
    sqlite="""UPDATE notification_deliveries
SET status = 'sent', sent_at = %(now)s, provider_message_id = v.message, updated_at = %(now)s
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS message,
             json_extract(value, '$[2]') AS attempts FROM json_each(%(batch)s)) AS v
WHERE notification_deliveries.id = v.id AND notification_deliveries.status = 'processing'
  AND notification_deliveries.locked_by = %(worker)s
  AND (v.attempts IS NULL OR notification_deliveries.attempts = v.attempts)""",
)


def _is_message_id(value: object) -> TypeGuard[str | None]:
    return value is None or (isinstance(value, str) and 0 < len(value) <= 255 and "\x00" not in value)


def check_message_id(value: Any) -> str | None:
    """Validate a provider message id: None, or a non-empty string of at most 255 characters."""
    return require(
        "provider_message_id",
        value,
        _is_message_id,
        "Must be a non-empty string of at most 255 characters.",
    )


def check_sent(sent: Any) -> list[tuple[str, str | None, int | None]]:
    """Validate mark_sent_many's items; return them sorted by id (one lock order for all)."""

    def ok(items: Any) -> bool:
        if isinstance(items, str | bytes | dict) or not isinstance(items, Sequence):
            return False
        return len(items) <= MAX_BATCH and all(
            isinstance(i, tuple | list) and len(i) in (2, 3) for i in items
        )

    require(
        "sent",
        sent,
        ok,
        f"Must be a list of at most {MAX_BATCH:,} "
        "(delivery_id, provider_message_id[, attempts]) items.",
    )
    checked = [
        (
            check_id("delivery_id", item[0]),
            check_message_id(item[1]),
            check_attempts(item[2] if len(item) == 3 else None),
        )
        for item in sent
    ]
    return sorted(checked, key=lambda item: item[0])


def mark_sent_values(
    worker_id: str, items: list[tuple[str, str | None, int | None]]
) -> dict[str, Any]:
    """Bind a checked batch for MARK_SENT_MANY on the current backend."""
    values: dict[str, Any] = {"now": D.sent_at.db_value(utcnow()), "worker": worker_id}
    if is_postgres():
        ids, messages, attempts = zip(*items, strict=True)
        values.update(ids=list(ids), messages=list(messages), attempts=list(attempts))
    else:
        values["batch"] = json.dumps(items)
    return values
