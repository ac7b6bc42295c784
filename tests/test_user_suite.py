"""The suite a user writes (tests/user_suite/, no conftest of ours) runs against the installed
package's pytest plugin and its ``datalayer_db`` fixture, on this run's backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import IS_PG, PG_ADMIN_URL

SUITE = Path(__file__).with_name("user_suite")

pytestmark = pytest.mark.skipif(
    os.environ.get("DATALAYER_TEST_WORKFLOWS", "1") == "0",
    reason="a pytest subprocess: the py311 envs run it (tox.ini: DATALAYER_TEST_WORKFLOWS)",
)


def test_a_users_suite_passes_with_the_fixture_and_rows_do_not_leak(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATALAYER_TEST_URL")}
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(SUITE),
            "--basetemp", str(tmp_path / "basetemp"), str(SUITE),
            # init_db(":memory:") then migrate() must not warn that the schema is behind
            "-W", "error::datalayer.connection.schema_version.SchemaBehindWarning"]
    if IS_PG:
        args += ["--datalayer-url", PG_ADMIN_URL]
    result = subprocess.run(args, cwd=SUITE, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout, result.stdout
