"""A throw-away PgBouncer in transaction mode in front of the test database.

Used when ``TEST_PGBOUNCER=1`` (and ``TEST_DATABASE_URL`` names PostgreSQL): the session's
``DATABASE_URL`` then goes through PgBouncer with ``DB_POOLER=transaction``, so the suite
proves the application works behind a transaction pooler. Schema resets stay direct.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from utils.database_access import normalize_database_url

PGBOUNCER_BINARIES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


def pgbouncer_enabled() -> bool:
    """TEST_PGBOUNCER=1 with a PostgreSQL TEST_DATABASE_URL."""
    return (os.environ.get("TEST_PGBOUNCER") == "1"
            and os.environ.get("TEST_DATABASE_URL", "").startswith(("postgres://",
                                                                   "postgresql")))


def pgbouncer_binary() -> str | None:
    found = shutil.which("pgbouncer")
    if found:
        return found
    return next((path for path in PGBOUNCER_BINARIES if os.access(path, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PgBouncer:
    """A running PgBouncer: its URL for clients and the process."""

    url: str
    port: int
    process: subprocess.Popen
    folder: Path

    def url_for(self, database_url: str) -> str:
        """``database_url`` (same server) routed through this PgBouncer."""
        return make_url(normalize_database_url(database_url)).set(
            host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    def log(self) -> str:
        path = self.folder / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.folder, ignore_errors=True)


def start_pgbouncer(database_url: str, *, pool_size: int = 20) -> PgBouncer:
    """Start PgBouncer (transaction mode, trust auth) on a free 127.0.0.1 port."""
    binary = pgbouncer_binary()
    if binary is None:
        raise RuntimeError("pgbouncer is not installed (apt-get install -y pgbouncer)")
    target = make_url(normalize_database_url(database_url))
    user = target.username or "postgres"
    port = _free_port()
    folder = Path(tempfile.mkdtemp(prefix="rivalscope-pgbouncer-"))
    folder.chmod(0o755)  # pgbouncer drops root privileges (-u) and must read its files
    (folder / "userlist.txt").write_text(f'"{user}" ""\n')
    (folder / "pgbouncer.ini").write_text("\n".join([
        "[databases]",  # any database name, forwarded as is (runs create their own)
        f"* = host={target.host or '127.0.0.1'} port={target.port or 5432}",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        "unix_socket_dir =",
        "auth_type = trust",
        f"auth_file = {folder / 'userlist.txt'}",
        "pool_mode = transaction",
        f"default_pool_size = {pool_size}",
        "max_client_conn = 500",
        "server_reset_query =",
        "ignore_startup_parameters = extra_float_digits",
        "log_connections = 0",
        "log_disconnections = 0",
        "",
    ]))
    for name in ("userlist.txt", "pgbouncer.ini"):
        (folder / name).chmod(0o644)
    command = [binary, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "postgres"]  # pgbouncer refuses to run as root
    log = open(folder / "pgbouncer.log", "wb")  # noqa: SIM115 - owned by the process
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    log.close()
    url = target.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    bouncer = PgBouncer(url=url, port=port, process=process, folder=folder)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = bouncer.log()
            bouncer.stop()
            raise RuntimeError(f"pgbouncer exited: {output}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return bouncer
        except OSError:
            time.sleep(0.1)
    bouncer.stop()
    raise RuntimeError("pgbouncer did not start listening within 15 s")


@pytest.fixture(scope="session", name="pgbouncer")
def pgbouncer_fixture() -> Iterator[PgBouncer | None]:
    """A PgBouncer in front of TEST_DATABASE_URL's server when TEST_PGBOUNCER=1, else None
    (``url_for(url)`` gives the pooled URL of any database there).

    While it runs, ``DB_POOLER=transaction`` is set in the environment so worker processes
    started by tests use the pooler settings too.
    """
    if not pgbouncer_enabled():
        yield None
        return
    bouncer = start_pgbouncer(os.environ["TEST_DATABASE_URL"])
    previous = os.environ.get("DB_POOLER")
    os.environ["DB_POOLER"] = "transaction"
    try:
        yield bouncer
    finally:
        if previous is None:
            os.environ.pop("DB_POOLER", None)
        else:
            os.environ["DB_POOLER"] = previous
        bouncer.stop()
