"""A private PostgreSQL primary and streaming hot standby on loopback, for the replica tests.

``ReplicaPair().start()`` runs ``initdb`` into a temporary directory, starts the primary
(``wal_level = replica``, trust for replication on 127.0.0.1), clones it with
``pg_basebackup -R -X stream`` and starts the clone as a hot standby, each on a free port,
then waits until the primary's ``pg_stat_replication`` shows the standby streaming.
``stop()`` stops both and removes the directory (call it in a ``finally``).

The binaries come from ``PG_BINDIR`` (default ``/usr/lib/postgresql/15/bin``). PostgreSQL
refuses to run as root: as root, the commands run as ``postgres`` (``runuser``) and the
directory belongs to that user. With ``log_statements=True`` both servers log every
statement with its application name (``%a``), so a test can count what each one served.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2

PG_BINDIR = Path(os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def available() -> bool:
    """Tell whether the PostgreSQL server binaries are installed."""
    return all((PG_BINDIR / tool).exists() for tool in ("initdb", "pg_ctl", "pg_basebackup"))


class ReplicaPair:
    """A primary and a streaming hot standby of its own: ``start()``, ``stop()``."""

    def __init__(self, *, fsync: bool = False, log_statements: bool = False) -> None:
        self.fsync = fsync
        self.log_statements = log_statements
        self.dir: Path | None = None
        self.primary_port = 0
        self.standby_port = 0

    # --- paths and commands -----------------------------------------------------------

    @property
    def primary_dir(self) -> Path:
        assert self.dir is not None
        return self.dir / "primary"

    @property
    def standby_dir(self) -> Path:
        assert self.dir is not None
        return self.dir / "standby"

    @property
    def primary_log(self) -> Path:
        assert self.dir is not None
        return self.dir / "primary.log"

    @property
    def standby_log(self) -> Path:
        assert self.dir is not None
        return self.dir / "standby.log"

    def _run(self, *args: str, timeout: float = 60) -> None:
        cmd = [str(PG_BINDIR / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )

    def url(self, database: str = "postgres", *, standby: bool = False, **query: str) -> str:
        """Return the URL of ``database`` on the primary (or on the standby)."""
        port = self.standby_port if standby else self.primary_port
        params = "&".join(f"{k}={v}" for k, v in query.items())
        return f"postgresql://postgres@127.0.0.1:{port}/{database}" + (
            f"?{params}" if params else ""
        )

    def connect(
        self, database: str = "postgres", *, standby: bool = False
    ) -> psycopg2.extensions.connection:
        """Open an autocommit psycopg2 connection to the primary (or to the standby)."""
        conn = psycopg2.connect(self.url(database, standby=standby), connect_timeout=5)
        conn.autocommit = True
        return conn

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> ReplicaPair:
        """Create and start both servers; wait until the standby streams."""
        self.dir = Path(tempfile.mkdtemp(prefix="dl_replica_"))
        try:
            if os.geteuid() == 0:
                user = pwd.getpwnam("postgres")
                os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._run(
                "initdb",
                "-D",
                str(self.primary_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            )
            self._configure_primary()
            self.primary_port = self._start_on_free_port(self.primary_dir, self.primary_log)
            self._run(
                "pg_basebackup",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.primary_port),
                "-U",
                "postgres",
                "-D",
                str(self.standby_dir),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            )
            self.standby_port = self._start_on_free_port(self.standby_dir, self.standby_log)
            self.wait_streaming()
        except BaseException:
            self.stop()
            raise
        return self

    def _configure_primary(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.dir}'",
            "wal_level": "replica",
            "max_wal_senders": "5",
            "hot_standby": "on",
            "fsync": "on" if self.fsync else "off",
            "full_page_writes": "on" if self.fsync else "off",
            "shared_buffers": "32MB",
            "max_connections": "60",
            "log_line_prefix": "'%m [%p] %q%a@%d '",
        }
        if self.log_statements:
            settings["log_statement"] = "'all'"
        with open(self.primary_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# datalayer replica tests\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        with open(self.primary_dir / "pg_hba.conf", "a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")

    def _start_on_free_port(self, data_dir: Path, log: Path, attempts: int = 5) -> int:
        """Start the server in ``data_dir`` on a free port (another may take it first: retry)."""
        for attempt in range(attempts):
            port = free_port()
            try:
                self._run(
                    "pg_ctl",
                    "-D",
                    str(data_dir),
                    "-l",
                    str(log),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    f"-p {port}",
                    "start",
                )
                return port
            except RuntimeError:
                if attempt == attempts - 1:
                    raise
                self._stop_server(data_dir)
        raise AssertionError("unreachable")

    def wait_streaming(self, timeout: float = 30) -> None:
        """Wait until the primary sees the standby streaming and the standby answers."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(psycopg2.Error):
                conn = self.connect()
                try:
                    with conn.cursor() as cur:
                        cur.execute(
                            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
                        )
                        streaming = cur.fetchone()[0]
                finally:
                    conn.close()
                if streaming:
                    standby = self.connect(standby=True)
                    try:
                        with standby.cursor() as cur:
                            cur.execute("SELECT pg_is_in_recovery()")
                            if cur.fetchone()[0]:
                                return
                    finally:
                        standby.close()
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the standby is not streaming after {timeout}s: "
                    f"{self._log_tail(self.standby_log)}"
                )
            time.sleep(0.05)

    def wait_replayed(self, timeout: float = 30) -> None:
        """Wait until the standby has replayed everything the primary has written so far."""
        conn, standby = self.connect(), self.connect(standby=True)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_current_wal_lsn()")
                target = cur.fetchone()[0]
            deadline = time.monotonic() + timeout
            with standby.cursor() as cur:
                while True:
                    cur.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,))
                    if cur.fetchone()[0]:
                        return
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"the standby has not replayed {target} in {timeout}s")
                    time.sleep(0.01)
        finally:
            conn.close()
            standby.close()

    def stop_standby(self) -> None:
        """Stop the standby (fast shutdown: its sessions are disconnected)."""
        self._stop_server(self.standby_dir, check=True)

    def start_standby(self) -> None:
        """Start the standby again on its port and wait until it streams."""
        self._run(
            "pg_ctl",
            "-D",
            str(self.standby_dir),
            "-l",
            str(self.standby_log),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.standby_port}",
            "start",
        )
        self.wait_streaming()

    def make_synchronous(self) -> None:
        """Make the primary wait for the standby on every commit (``synchronous_standby_names``)."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
                cur.execute("SELECT pg_reload_conf()")
            deadline = time.monotonic() + 30
            with conn.cursor() as cur:
                while True:
                    cur.execute("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")
                    if cur.fetchone()[0]:
                        return
                    if time.monotonic() > deadline:
                        raise TimeoutError("the standby never became synchronous")
                    time.sleep(0.05)
        finally:
            conn.close()

    def kill_primary(self) -> None:
        """Crash the primary: ``pg_ctl stop -m immediate`` (no shutdown checkpoint, sessions cut)."""
        self._run("pg_ctl", "-D", str(self.primary_dir), "-m", "immediate", "-w", "stop")

    def promote_standby(self) -> None:
        """Promote the standby to primary (``pg_ctl promote``) and wait until it takes writes."""
        self._run("pg_ctl", "-D", str(self.standby_dir), "-w", "-t", "60", "promote")

    def _stop_server(self, data_dir: Path, *, check: bool = False) -> None:
        if not (data_dir / "postmaster.pid").exists():
            return
        try:
            self._run("pg_ctl", "-D", str(data_dir), "-m", "fast", "-w", "-t", "60", "stop")
        except RuntimeError:
            if check:
                raise

    def stop(self) -> None:
        """Stop both servers and remove their directory."""
        if self.dir is None:
            return
        for data_dir in (self.standby_dir, self.primary_dir):
            with contextlib.suppress(Exception):
                self._stop_server(data_dir)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    # --- logs -------------------------------------------------------------------------

    def log_size(self, *, standby: bool) -> int:
        """Return the size of a server's log now (pass it as ``since`` to ``statements``)."""
        return (self.standby_log if standby else self.primary_log).stat().st_size

    def statements(
        self, *, standby: bool, application: str, since: int = 0, kind: str = "statement"
    ) -> list[str]:
        """Return what a server logged for ``application`` (``log_statements``), in order.

        ``kind``: ``"statement"`` (the SQL it ran) or ``"ERROR"`` (the errors it reported).
        """
        log = self.standby_log if standby else self.primary_log
        marker, tag = f" {application}@", f"{kind}: " if kind == "statement" else f"{kind}:  "
        found = []
        with open(log, "rb") as raw:
            raw.seek(since)
            for line in raw.read().decode(errors="replace").splitlines():
                if marker in line and tag in line:
                    found.append(line.split(tag, 1)[1])
        return found

    @staticmethod
    def _log_tail(log: Path, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        return ""
