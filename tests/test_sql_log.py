"""The SQL log: on stderr with no set-up, each statement once with its duration, the
transaction boundaries, slow statements as warnings, and no secret ever in it (nor in an
error message)."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import subprocess
import sys
import textwrap
import time
import traceback
import uuid

import pytest
from admin_console_helpers import new_admin
from factories import make_tenant, make_user
from helpers import IS_PG, direct_url

import datalayer
from datalayer import (
    AccountQueries,
    AdminUserQueries,
    ConflictError,
    JwksQueries,
    SessionQueries,
    TenantInviteQueries,
    VerificationQueries,
    db,
    init_db,
)
from datalayer.redact import secret_columns

_DURATION = re.compile(r"\(\d+\.\d+ ms\)")


def _run(url: str, body: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    code = "import logging, sys\nfrom datalayer import *\n" + textwrap.dedent(body).strip()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DATALAYER_")}
    environ.update(env or {})
    environ["TEST_URL"] = url
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=60
    )


_WRITE_AND_READ = """
    init_db(__import__("os").environ["TEST_URL"])
    user = UserQueries.create({"name": "Logged", "email": "logged-MARK@example.com"})
    UserQueries.find_by_email("logged-MARK@example.com")
    with atomic():
        with atomic():
            UserQueries.update(user["id"], {"name": "Nested"})
    UserQueries.delete(user["id"])
"""


def test_env_flag_alone_prints_statements_on_stderr(database_url) -> None:
    mark = uuid.uuid4().hex[:8]
    result = _run(direct_url(database_url), _WRITE_AND_READ.replace("MARK", mark),
                  {"DATALAYER_LOG_SQL": "1"})
    assert result.returncode == 0, result.stderr
    err = result.stderr
    assert f"logged-{mark}@example.com" in err
    lines = err.splitlines()
    selects = [x for x in lines if "SELECT" in x and f"logged-{mark}" in x]
    assert len(selects) == 1, err  # each statement once
    assert all(_DURATION.search(x) for x in lines if "SELECT" in x or "INSERT" in x)
    for boundary in ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE SAVEPOINT"):
        assert any(boundary in x for x in lines), (boundary, err)


def test_configured_logging_gets_each_statement_once_and_stderr_stays_quiet(database_url) -> None:
    mark = uuid.uuid4().hex[:8]
    body = "logging.basicConfig(level=logging.DEBUG, stream=sys.stdout)\n" + textwrap.dedent(
        _WRITE_AND_READ.replace("MARK", mark)
    )
    result = _run(direct_url(database_url), body, {"DATALAYER_LOG_SQL": "1"})
    assert result.returncode == 0, result.stderr
    assert f"logged-{mark}" not in result.stderr  # the application's handler, not ours
    out = result.stdout
    assert out.count(f"logged-{mark}@example.com") == 2, out  # the INSERT and the SELECT
    assert "ROLLBACK" not in out and "COMMIT" in out


def test_log_off_by_default(database_url) -> None:
    result = _run(direct_url(database_url), _WRITE_AND_READ.replace("MARK", "off"))
    assert result.returncode == 0, result.stderr
    assert "SELECT" not in result.stderr


# Slowness made, not hoped for: PostgreSQL sleeps in pg_sleep; SQLite in a function the test
# registers on its own connection (a query that merely *tends* to be slow is fast on a quiet
# machine). The threshold leaves a loaded machine 200 ms for the statements meant to be fast.
_SLOW_MS = 200
_SLEEP_S = 0.4
_SLEEP_FN = "datalayer_test_sleep"


def _slow_sql() -> str:
    """Register the sleeping function on this thread's SQLite connection; return the SQL."""
    if IS_PG:
        return f"SELECT pg_sleep({_SLEEP_S})"
    db.connection().create_function(_SLEEP_FN, 1, lambda s: time.sleep(s) or 1)
    return f"SELECT {_SLEEP_FN}({_SLEEP_S})"


def test_slow_statements_are_warnings(database_url, monkeypatch, caplog) -> None:
    init_db(database_url, slow_query_ms=_SLOW_MS)
    try:
        slow = _slow_sql()
        with caplog.at_level(logging.WARNING, logger="datalayer.sql"):
            db.execute_sql("SELECT 1")
            db.execute_sql(slow)
        warnings = [r for r in caplog.records if r.name == "datalayer.sql"]
        assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
        assert "slow" in warnings[0].getMessage() and _DURATION.search(warnings[0].getMessage())
        monkeypatch.setenv("DATALAYER_SLOW_QUERY_MS", str(_SLOW_MS))
        init_db(database_url)
        slow = _slow_sql()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="datalayer.sql"):
            db.execute_sql(slow)
        assert [r for r in caplog.records if r.name == "datalayer.sql"]
    finally:
        monkeypatch.delenv("DATALAYER_SLOW_QUERY_MS", raising=False)
        init_db(database_url)


def test_slow_warning_reaches_stderr_without_set_up(database_url) -> None:
    register = "" if IS_PG else (
        f"db.connection().create_function({_SLEEP_FN!r}, 1, "
        "lambda s: __import__('time').sleep(s) or 1)"
    )
    sql = f"SELECT pg_sleep({_SLEEP_S})" if IS_PG else f"SELECT {_SLEEP_FN}({_SLEEP_S})"
    body = f"""
        init_db(__import__("os").environ["TEST_URL"], slow_query_ms={_SLOW_MS})
        {register}
        db.execute_sql({sql!r})
    """
    result = _run(direct_url(database_url), body)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("slow") == 1, result.stderr


def _secret(kind: str) -> str:
    return f"S3CRET-{kind}-{uuid.uuid4().hex}"


def test_no_secret_in_the_log_or_in_errors(fresh_db, monkeypatch, caplog, capfd) -> None:
    monkeypatch.setenv("DATALAYER_LOG_SQL", "1")
    init_db(fresh_db)
    written: dict[tuple[str, str], list[str]] = {}
    errors: list[BaseException] = []

    def keep(table: str, column: str, *values: str) -> None:
        written.setdefault((table, column), []).extend(values)

    with caplog.at_level(logging.DEBUG):  # the root too: peewee's own logger included
        user = make_user()
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        token = _secret("session")
        SessionQueries.create(user.id, token=token, expires_at=expires)
        SessionQueries.find_valid(token)
        with pytest.raises(ConflictError) as info:  # a unique violation's Key (token)=(...)
            SessionQueries.create(user.id, token=token, expires_at=expires)
        errors.append(info.value)
        SessionQueries.revoke(token)
        keep("session", "token", token)

        account = {c: _secret(c) for c in ("password", "access_token", "refresh_token", "id_token")}
        AccountQueries.link(user.id, {"provider_id": "github", "account_id": "gh-1", **account})
        for column, value in account.items():
            keep("account", column, value)

        value = _secret("verification")
        VerificationQueries.create("reset:someone", value, expires_at=expires)
        assert VerificationQueries.consume("reset:someone", value)
        keep("verification", "value", value)

        first, second = _secret("jwks"), _secret("jwks")
        JwksQueries.create(public_key="public-1", private_key=first)
        JwksQueries.rotate(public_key="public-2", private_key=second, grace_seconds=60)
        keep("jwks", "private_key", first, second)

        tenant = make_tenant(owner=user)
        invitee = make_user(email_verified=True)
        _, invite_token = TenantInviteQueries.create(tenant.id, user.id, email=invitee.email)
        TenantInviteQueries.find_by_token(invite_token)
        TenantInviteQueries.accept(invite_token, invitee.id)
        keep("tenant_invites", "token_hash", invite_token,
             hashlib.sha256(invite_token.encode()).hexdigest())

        password_hash = "$argon2id$v=19$m=65536,t=3,p=4$" + _secret("hash")
        root = new_admin("admin_roles:write")
        AdminUserQueries.create(
            root, {"email": "admin-log@example.com", "password_hash": password_hash,
                   "status": "active"})  # fmt: skip
        keep("admin_users", "password_hash", password_hash)

        if hasattr(datalayer, "AdminSessionQueries"):
            admin = AdminUserQueries.find_by_email("admin-log@example.com")
            admin_token = _secret("admin-session")
            datalayer.AdminSessionQueries.create(admin["id"], token=admin_token, expires_at=expires)
            datalayer.AdminSessionQueries.find_valid(admin_token)
            keep("admin_sessions", "token", admin_token)

    assert set(written) >= secret_columns(), "a secret column this test does not write"
    out, err = capfd.readouterr()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "INSERT" in logged and "***" in logged  # the log was on, with masks
    for error in errors:
        logged += "\n" + "".join(traceback.format_exception(error))
    for (table, column), values in written.items():
        for secret in values:
            for name, text in (("caplog", logged), ("stdout", out), ("stderr", err)):
                assert secret not in text, f"{table}.{column} in {name}"
