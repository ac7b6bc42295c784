"""The routing context: where this context's queries go, and what it has written.

Two context variables and the functions around them, in a module of their own: ``db``
(in ``datalayer.connection.database``), the replica router and the compiled statements all read them, and
none of those modules needs to import another to do so. Nothing here imports the rest of
the package.

- The routed database: ``None`` (the primary, ``db.obj``), or the replica a replica-safe
  read was sent to for the duration of that read (``routed_to``).
- The read-your-writes ``Session``: the writes made in this context (a thread, or a
  ``session()`` block) and the primary WAL position a replica must have replayed to
  show them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import peewee

__all__ = ["Session", "current_session", "routed_database", "routed_to", "session"]

_routed: ContextVar[peewee.Database | None] = ContextVar("datalayer_routed", default=None)


def routed_database() -> peewee.Database | None:
    """Return the database this context's queries are routed to; None means the primary."""
    return _routed.get()


@contextmanager
def routed_to(database: peewee.Database) -> Iterator[None]:
    """Send this context's queries to ``database`` for the duration of the block."""
    token = _routed.set(database)
    try:
        yield
    finally:
        _routed.reset(token)


class Session:
    """A read-your-writes position: the writes of a context and the WAL position they need.

    Hand one to another thread (``with session(token):``) to carry a request's or a job's
    writes with it.
    """

    __slots__ = ("fenced", "lsn", "writes")

    def __init__(self) -> None:
        self.writes = 0  # writes seen in this context
        self.fenced = 0  # writes covered by ``lsn``
        self.lsn = 0  # the primary's position those writes need a replica to have replayed


_session: ContextVar[Session] = ContextVar("datalayer_replica_session")


def current_session() -> Session:
    """Return this context's position (one per thread unless ``session()`` set another)."""
    current = _session.get(None)
    if current is None:
        current = Session()
        _session.set(current)
    return current


@contextmanager
def session(token: Session | None = None) -> Iterator[Session]:
    """Track read-your-writes for one unit of work (a request, a job), or continue ``token``'s."""
    current = token if token is not None else Session()
    reset = _session.set(current)
    try:
        yield current
    finally:
        _session.reset(reset)
