"""Start and stop a private PgBouncer (transaction pooling) in front of a PostgreSQL server.

Used by the test suite: ``DATALAYER_TEST_PGBOUNCER=1`` routes every test database through
one, and the pooler/fault tests start their own. Needs the ``pgbouncer`` binary (Debian
package ``pgbouncer``). PgBouncer refuses to run as root, so as root it is started with
``-u postgres`` and its files are owned by that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import psycopg2

PGBOUNCER_BIN = (
    os.environ.get("PGBOUNCER_BIN") or shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_as() -> str | None:
    """The user to drop to: ``postgres`` when running as root, else nobody (stay)."""
    return "postgres" if os.geteuid() == 0 else None


class PgBouncer:
    """A PgBouncer process of its own: ``start()``, ``url(db)``, ``admin(cmd)``, ``stop()``."""

    def __init__(
        self,
        server_url: str,
        *,
        pool_size: int = 3,
        max_client_conn: int = 200,
        query_wait_timeout: int = 30,
    ) -> None:
        parsed = urlparse(server_url)
        self.server_host = parsed.hostname or "127.0.0.1"
        self.server_port = parsed.port or 5432
        self.user = parsed.username or "postgres"
        self.password = parsed.password or ""
        self.pool_size = pool_size
        self.max_client_conn = max_client_conn
        self.query_wait_timeout = query_wait_timeout
        self.port = 0
        self.dir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, database: str, **query: str) -> str:
        """Return the URL of ``database`` through this PgBouncer."""
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        params = "&".join(f"{k}={v}" for k, v in query.items())
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}" + (
            f"?{params}" if params else ""
        )

    def _ini(self) -> str:
        assert self.dir is not None
        return f"""\
[databases]
* = host={self.server_host} port={self.server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.dir}/users.txt
admin_users = {self.user}
pool_mode = transaction
default_pool_size = {self.pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = {self.max_client_conn}
query_wait_timeout = {self.query_wait_timeout}
server_login_retry = 0.2
server_connect_timeout = 5
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
logfile = {self.dir}/pgbouncer.log
pidfile = {self.dir}/pgbouncer.pid
"""

    def start(self, timeout: float = 15.0) -> PgBouncer:
        """Write the configuration, start PgBouncer and wait until it accepts connections."""
        if not os.path.exists(PGBOUNCER_BIN):
            raise RuntimeError(
                f"pgbouncer not found at {PGBOUNCER_BIN}: apt-get install -y pgbouncer"
            )
        self.dir = Path(tempfile.mkdtemp(prefix="dl-pgbouncer-"))
        self.port = free_port()
        (self.dir / "pgbouncer.ini").write_text(self._ini())
        (self.dir / "users.txt").write_text(f'"{self.user}" "{self.password}"\n')
        command = [PGBOUNCER_BIN, str(self.dir / "pgbouncer.ini")]
        user = _run_as()
        if user:
            entry = pwd.getpwnam(user)
            for path in (self.dir, *self.dir.iterdir()):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            command[1:1] = ["-u", user]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited at start:\n{self.log_tail()}")
            try:
                self.admin("SHOW VERSION")
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"pgbouncer did not start:\n{self.log_tail()}") from None
                time.sleep(0.05)

    def log_tail(self, lines: int = 20) -> str:
        """Return the end of PgBouncer's log (for error messages)."""
        try:
            assert self.dir is not None
            text = (self.dir / "pgbouncer.log").read_text(errors="replace")
        except (OSError, AssertionError):
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _console(self, command: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        conn = psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            dbname="pgbouncer",
            user=self.user,
            password=self.password or None,
            connect_timeout=5,
        )
        try:
            conn.autocommit = True  # the admin console knows no transactions
            with conn.cursor() as cur:
                cur.execute(command)
                if cur.description is None:
                    return [], []
                return [d[0] for d in cur.description], cur.fetchall()
        finally:
            conn.close()

    def admin(self, command: str) -> list[tuple[Any, ...]]:
        """Run a command on the admin console (SHOW POOLS, PAUSE db, RESUME db, KILL db...)."""
        return self._console(command)[1]

    def pools(self, database: str) -> dict[str, Any]:
        """Return SHOW POOLS' row for ``database`` as a dict (empty if it has no pool)."""
        names, rows = self._console("SHOW POOLS")
        return next((dict(zip(names, r, strict=True)) for r in rows if r[0] == database), {})

    def release(self, database: str) -> None:
        """Close every connection PgBouncer holds to ``database`` (e.g. before cloning it)."""
        try:
            self.admin(f'KILL "{database}"')
        except psycopg2.Error:  # no such database: PgBouncer never connected to it
            return
        self.admin(f'RESUME "{database}"')

    def stop(self) -> None:
        """Stop PgBouncer and remove its files."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> PgBouncer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
