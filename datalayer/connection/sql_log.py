"""The SQL log: every statement once, with its duration, the transaction boundaries, slow
statements as warnings, and secrets masked.

- ``log_sql`` (``DATALAYER_LOG_SQL=1``, or ``DATALAYER_ENV=development``): each statement
  — ``BEGIN``, ``COMMIT``, ``ROLLBACK`` and savepoints included — is logged at DEBUG on
  the ``datalayer.sql`` logger as ``(0.42 ms) SELECT … ['param', '***']``.
- ``slow_query_ms`` (``DATALAYER_SLOW_QUERY_MS``): a statement that took at least that
  long is logged at WARNING instead (also with ``log_sql`` off).
- With no logging set-up at all, the records go to stderr (a handler of the library's
  own that stands aside as soon as the application configures a handler that would
  show them: nothing is printed twice). peewee's own statement logger is never used.
- Values bound to secret columns are printed as ``***``, long values are cut
  (``datalayer.redact``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

from datalayer.redact import mask_params, scrub

__all__ = ["log_statement", "sql_logger", "timed", "use_stderr_unless_configured"]

T = TypeVar("T")

sql_logger = logging.getLogger("datalayer.sql")


class _StderrUnlessConfigured(logging.Handler):
    """Print the SQL log on stderr while no other handler would show it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def _others_show(self) -> bool:
        logger: logging.Logger | None = sql_logger
        while logger is not None:
            if any(h is not self for h in logger.handlers):
                return True
            if not logger.propagate:
                return False
            logger = logger.parent
        return False

    def emit(self, record: logging.LogRecord) -> None:
        if self._others_show():
            return
        try:
            stream = sys.stderr  # the current one (tests and applications redirect it)
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging must never break a query
            self.handleError(record)


_handler: _StderrUnlessConfigured | None = None


def use_stderr_unless_configured(debug: bool) -> None:
    """Make the SQL log visible: on stderr unless the application shows it itself.

    ``debug``: statements are logged at DEBUG, so the logger must let DEBUG through —
    unless the application gave it a level of its own.
    """
    global _handler
    if _handler is None:
        _handler = _StderrUnlessConfigured()
        sql_logger.addHandler(_handler)
    if debug and sql_logger.level == logging.NOTSET:
        sql_logger.setLevel(logging.DEBUG)


def log_statement(
    sql: str,
    params: Any,
    seconds: float,
    exc: BaseException | None,
    *,
    log: bool,
    slow_ms: float | None,
) -> None:
    """Log one statement: a WARNING when slow, else DEBUG when the log is on."""
    ms = seconds * 1000
    slow = slow_ms is not None and ms >= slow_ms
    if not slow and not (log and sql_logger.isEnabledFor(logging.DEBUG)):
        return
    status = "" if exc is None else f" failed: {type(exc).__name__}"
    text = f"{sql} {mask_params(params)}".rstrip()
    if slow:
        sql_logger.warning("(%.2f ms) slow statement (over %g ms): %s%s", ms, slow_ms, text, status)
    else:
        sql_logger.debug("(%.2f ms) %s%s", ms, scrub(text), status)


def statement_hook(log: bool, slow_ms: float | None) -> Callable[[Any], None]:
    """Return a peewee query hook that logs each statement it is told about."""

    def hook(event: Any) -> None:
        log_statement(
            event.sql, event.params, event.duration, event.exception, log=log, slow_ms=slow_ms
        )

    hook.datalayer_sql_log = True  # type: ignore[attr-defined]  # a marker on a function
    return hook


def timed(sql: str, call: Callable[[], T], *, log: bool, slow_ms: float | None) -> T:
    """Run ``call`` (a BEGIN, COMMIT or ROLLBACK) and log it as the statement ``sql``."""
    if not log and slow_ms is None:
        return call()
    started = time.perf_counter()
    try:
        result = call()
    except Exception as exc:
        log_statement(sql, None, time.perf_counter() - started, exc, log=log, slow_ms=slow_ms)
        raise
    log_statement(sql, None, time.perf_counter() - started, None, log=log, slow_ms=slow_ms)
    return result
