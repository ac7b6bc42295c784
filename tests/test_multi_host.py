"""Multi-host URLs (libpq picks the writable node) and what a failover leaves behind:
a session on a node that no longer takes writes (SQLSTATE 25006) is never used again.

The failover itself, on real servers, is in ``test_failover.py``.
"""

from __future__ import annotations

import contextlib

import peewee
import psycopg2
import pytest
from click.testing import CliRunner
from factories import make_user
from helpers import db_name, direct_url, pg_direct_url, postgres_only
from pg_replica import free_port

from datalayer import connection_context, db, init_db, retrying
from datalayer.cli.main import main
from datalayer.connection import replicas
from datalayer.connection.database import build_database
from datalayer.errors import ConfigurationError
from datalayer.models import User
from datalayer.redact import redact_url


def multi_host(url: str, **query: str) -> str:
    """The URL of the same database behind a dead host first, then the live one."""
    live = url.split("://", 1)[1].split("/", 1)[0].rpartition("@")[2]
    params = "&".join(f"{k}={v}" for k, v in query.items())
    return (
        f"postgresql://postgres@127.0.0.1:{free_port()},{live}/{db_name(url)}"
        + (f"?{params}" if params else "")
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:s3cret@h1:5432,h2:5433/db?target_session_attrs=read-write",
         "postgresql://u:***@h1:5432,h2:5433/db?target_session_attrs=read-write"),
        ("postgresql://u:p@ss@h1,h2/db", "postgresql://u:***@h1,h2/db"),
        ("postgresql+pool://u@h1:1,h2:2/db?password=s3cret&sslmode=require",
         "postgresql+pool://u@h1:1,h2:2/db?password=***&sslmode=require"),
        ("host=h1,h2 password=s3cret dbname=db", "host=h1,h2 password=*** dbname=db"),
        ("postgresql://u@h1:1,h2:2/db", "postgresql://u@h1:1,h2:2/db"),
    ],
)
def test_a_password_is_masked_in_any_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_multi_host_url_s_error_masks_the_password() -> None:
    with pytest.raises(ConfigurationError) as info:
        build_database("postgresql://u:s3cret@h1:5432,h2:5433/?target_session_attrs=any")
    assert "s3cret" not in str(info.value)
    assert "u:***@h1:5432,h2:5433" in str(info.value)


def test_multi_host_urls_are_read_by_libpq_s_rules() -> None:
    database = build_database(
        "postgresql+pool://app:p%40ss@h1:5432,[::1]:5433,h3/app?target_session_attrs=read-write"
        "&statement_timeout=500"
    )
    params = database.connect_params
    assert (params["host"], params["port"]) == ("h1,::1,h3", "5432,5433,")
    assert (params["user"], params["password"]) == ("app", "p@ss")
    assert params["target_session_attrs"] == "read-write"
    assert database.database == "app"
    assert database.statement_timeout == 500  # the library's own options still apply


def test_replica_urls_may_be_multi_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "DATABASE_REPLICA_URLS",
        "postgresql://u@r1:5432,r2:5432/db?target_session_attrs=standby, postgresql://u@r3/db",
    )
    assert replicas.take_options({})["replica_urls"] == [
        "postgresql://u@r1:5432,r2:5432/db?target_session_attrs=standby",
        "postgresql://u@r3/db",
    ]


def _server_port() -> int:
    return int(db.execute_sql("SELECT inet_server_port()").fetchone()[0])


@postgres_only
@pytest.mark.parametrize("pool", [False, True], ids=["plain", "pooled"])
def test_init_db_connects_to_the_live_host_of_a_multi_host_url(fresh_db, pool) -> None:
    url = multi_host(direct_url(fresh_db), target_session_attrs="read-write")
    init_db(url, pool=pool)
    user = retrying(lambda: make_user(email="multi@example.com"))
    assert User.get_by_id(user.id).email == "multi@example.com"
    assert _server_port() == int(pg_direct_url("x").split(":")[-1].split("/")[0])


@postgres_only
def test_database_url_and_the_commands_take_a_multi_host_url(fresh_db, monkeypatch) -> None:
    url = multi_host(direct_url(fresh_db), target_session_attrs="read-write")
    monkeypatch.setenv("DATABASE_URL", url)
    db.close()
    init_db()
    assert db.execute_sql("SELECT current_database()").fetchone()[0] == db_name(fresh_db)
    db.close()
    result = CliRunner().invoke(main, ["status", "--database", url])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].endswith(", 0 pending")


def _make_new_sessions_read_only(url: str, on: bool) -> None:
    admin = psycopg2.connect(pg_direct_url("postgres"))
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            value = "on" if on else "DEFAULT"
            cur.execute(f'ALTER DATABASE "{db_name(url)}" SET default_transaction_read_only = {value}')
    finally:
        admin.close()


def _rename(user_id: str, name: str) -> int:
    return int(User.update(name=name).where(User.id == user_id).execute())


@postgres_only
@pytest.mark.parametrize("pool", [False, True], ids=["plain", "pooled"])
def test_a_session_on_a_read_only_node_is_dropped_and_the_work_retried(fresh_db, pool) -> None:
    """A demoted primary: the session this worker holds now refuses writes (25006)."""
    user = make_user(email="demoted@example.com")
    url = direct_url(fresh_db)
    db.close()
    _make_new_sessions_read_only(url, True)
    try:
        init_db(url, pool=pool)
        # Plain: the worker keeps its session open; pooled: the session goes back to the pool.
        with connection_context() if pool else contextlib.nullcontext():
            stale = db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
        _make_new_sessions_read_only(url, False)  # the "new primary": new sessions write
        seen: list[int] = []

        def work() -> int:
            seen.append(db.execute_sql("SELECT pg_backend_pid()").fetchone()[0])
            return _rename(user.id, "renamed")

        assert retrying(work, attempts=3, base_delay=0.01) == 1
        assert seen[0] == stale and seen[-1] != stale  # the stale session was left behind
        assert User.get_by_id(user.id).name == "renamed"
    finally:
        db.close()
        _make_new_sessions_read_only(url, False)


@postgres_only
@pytest.mark.parametrize("pool", [False, True], ids=["plain", "pooled"])
def test_without_retrying_the_next_unit_of_work_gets_a_fresh_session(fresh_db, pool) -> None:
    user = make_user(email="next@example.com")
    url = direct_url(fresh_db)
    db.close()
    _make_new_sessions_read_only(url, True)
    try:
        init_db(url, pool=pool)
        with connection_context(), pytest.raises(peewee.InternalError):
            stale = db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
            _rename(user.id, "refused")
        _make_new_sessions_read_only(url, False)
        with connection_context():
            assert db.execute_sql("SELECT pg_backend_pid()").fetchone()[0] != stale
            assert _rename(user.id, "second") == 1
    finally:
        db.close()
        _make_new_sessions_read_only(url, False)
    assert User.get_by_id(user.id).name == "second"
