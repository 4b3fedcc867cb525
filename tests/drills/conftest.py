"""Fault drills: a PRIVATE PostgreSQL and Redis on free ports, and Rivalscope's real
processes (gunicorn, celery worker) pointed at them, so a drill may stop, restart or kill
any of them without touching the machine's shared services.

PostgreSQL: ``initdb`` into a temporary folder as the ``postgres`` OS user, ``pg_ctl``
start/stop; Redis: ``redis-server --save ""`` as a subprocess. One pair per test session,
created on first use; every drill starts from empty tables and an empty broker.

The drills run on the PostgreSQL + Redis CI run (``TEST_DATABASE_URL`` set); on the SQLite
run they are skipped (they exercise PostgreSQL and Redis failure modes).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tests.conftest import BASE_PG_URL, free_port
from tests.processes import ChildProcess as Proc
from tests.processes import (
    spawn,
    unexpected_tracebacks,  # noqa: F401 - for the drills
)

ROOT = Path(__file__).resolve().parents[2]
def find_pg_bin() -> Path:
    """The newest installed PostgreSQL server's bin folder (Debian keeps one per major)."""
    if os.environ.get("DRILL_PG_BIN"):
        return Path(os.environ["DRILL_PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else Path("/usr/lib/postgresql/bin")


PG_BIN = find_pg_bin()
DATABASE = "rivalscope_drill"
QUEUE = "rivalscope-drill"
EMAIL = "drill@example.test"
PASSWORD = "drill-password"
APP_TABLES = ("batch_events", "comparisons", "pages", "sites", "batches", "api_tokens")


def _skip_reason() -> str | None:
    if not BASE_PG_URL:
        return ("fault drills run on the PostgreSQL + Redis run (set TEST_DATABASE_URL): they "
                "stop and restart a private PostgreSQL and Redis")
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL server binaries not found in {PG_BIN}"
    if shutil.which("redis-server") is None:
        return "redis-server not installed"
    if os.geteuid() != 0 and os.environ.get("USER") != "postgres":
        return "initdb must run as the postgres OS user (run the tests as root or postgres)"
    return None


def as_postgres(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a PostgreSQL server binary as the ``postgres`` OS user."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    done = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
    return done


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1:<free port>."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="rivalscope-drill-pg-"))
        shutil.chown(self.folder, "postgres", "postgres")
        self.data = self.folder / "data"
        self.logfile = self.folder / "server.log"
        self.port = free_port()

    def init(self) -> None:
        as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                    "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=200")
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.logfile),
                    "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60",
                    "stop")

    def running(self) -> bool:
        try:
            as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "status")
        except RuntimeError:
            return False
        return True

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivateRedis:
    """A throwaway ``redis-server`` (no persistence) on 127.0.0.1:<free port>."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="rivalscope-drill-redis-"))
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.ping():
                return
            time.sleep(0.1)
        raise RuntimeError("private redis-server did not start")

    def ping(self) -> bool:
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def flush(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url)
        client.flushall()
        client.close()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class Drill:
    """The private services and how to start Rivalscope on them."""

    pg: PrivatePostgres
    redis: PrivateRedis
    folder: Path

    @property
    def database_url(self) -> str:
        return self.pg.url()

    def env(self, role: str, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("TEST_", "DB_", "FETCH_", "CELERY_", "WEB_"))}
        env.update({
            "RIVALSCOPE_ENV": "test", "RIVALSCOPE_ROLE": role, "FLASK_APP": "app.py",
            "RIVALSCOPE_INSTANCE": str(self.folder / "instance"),
            "DATABASE_URL": self.database_url, "TEST_DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": self.redis.url, "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
            "FETCH_ALLOW_NETWORKS": "127.0.0.0/8", "FETCH_DELAY_SECONDS": "0",
            "SECRET_KEY": "drill-secret", "PYTHONUNBUFFERED": "1",
            # The drills play many clients of one user: per-user limits are not under test.
            "USER_MAX_RUNNING_SITES": "0", "USER_MAX_BATCHES_PER_HOUR": "0",
            "USER_MAX_PAGES_PER_DAY": "0",
        })
        env.update(extra)
        return env

    def flask(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT,
                              env=self.env("cli"), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"flask {' '.join(args)}:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Proc:
        return spawn(name, argv, env, self.folder / f"{name}-{time.monotonic_ns()}.log", ROOT)

    def start_web(self, *, workers: int = 2, threads: int = 4,
                  gunicorn_args: tuple[str, ...] = (), **extra: str) -> tuple[Proc, str]:
        """gunicorn with the project's gunicorn.conf.py; returns it and its base URL."""
        port = free_port()
        env = self.env("web", WEB_WORKERS=str(workers), WEB_THREADS=str(threads), **extra)
        web = self._spawn("web", [sys.executable, "-m", "gunicorn", "--config",
                                  "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
                                  *gunicorn_args, "app:app"], env)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not web.alive():
                raise RuntimeError(f"gunicorn exited:\n{web.output()[-3000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    return web, base
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        web.stop()
        raise RuntimeError(f"gunicorn never answered:\n{web.output()[-3000:]}")

    def start_worker(self, *, concurrency: int = 4, **extra: str) -> Proc:
        """One ``celery worker --pool threads`` on the drill queue (waits until ready)."""
        worker = self._spawn("worker", [
            sys.executable, "-m", "celery", "-A", "app:celery_app", "worker", "--pool",
            "threads", "--concurrency", str(concurrency), "-Q", QUEUE, "--without-gossip",
            "--without-mingle", "--loglevel", "INFO", "-n", f"drill-{time.monotonic_ns()}@%h"],
            self.env("worker", **extra))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not worker.alive():
                raise RuntimeError(f"worker exited:\n{worker.output()[-3000:]}")
            if " ready." in worker.output():
                return worker
            time.sleep(0.2)
        worker.stop()
        raise RuntimeError(f"worker never became ready:\n{worker.output()[-3000:]}")

    def engine(self) -> sa.Engine:
        """A NullPool engine on the private database, for the drill's own checks."""
        return sa.create_engine(self.database_url.replace("postgresql://",
                                                          "postgresql+psycopg2://", 1),
                                poolclass=NullPool, connect_args={"connect_timeout": 3})

    def send_task(self, name: str) -> None:
        """Publish a task by name to the drill queue (e.g. what beat would send)."""
        from celery import Celery

        client = Celery("drill-client", broker=self.redis.url, set_as_current=False)
        try:
            client.send_task(name, queue=QUEUE)
        finally:
            client.close()

    def token(self, base: str) -> dict[str, str]:
        """A bearer header for the drill user."""
        response = httpx.post(f"{base}/api/v1/tokens",
                              json={"email": EMAIL, "password": PASSWORD}, timeout=30)
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def reset(self) -> None:
        """Empty tables (the user stays) and the broker."""
        engine = self.engine()
        with engine.begin() as connection:
            connection.execute(sa.text(f"TRUNCATE {', '.join(APP_TABLES)} "
                                       "RESTART IDENTITY CASCADE"))
        engine.dispose()
        self.redis.flush()


@pytest.fixture(scope="session")
def drill_services() -> Iterator[Drill]:
    """The private PostgreSQL and Redis, migrated, with one user (session-wide)."""
    reason = _skip_reason()
    if reason and BASE_PG_URL and os.environ.get("CI"):
        pytest.fail(f"this drill must run in CI: {reason}")  # loudly, never a silent skip
    if reason:
        pytest.skip(reason)
    pg, redis = PrivatePostgres(), PrivateRedis()
    folder = Path(tempfile.mkdtemp(prefix="rivalscope-drill-"))
    try:
        pg.init()
        pg.start()
        engine = sa.create_engine(pg.url("postgres").replace("postgresql://",
                                                             "postgresql+psycopg2://", 1),
                                  poolclass=NullPool, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{DATABASE}"'))
        engine.dispose()
        redis.start()
        drill = Drill(pg, redis, folder)
        drill.flask("db", "upgrade")
        drill.flask("users", "create", EMAIL, "--password", PASSWORD)
        yield drill
    finally:
        redis.destroy()
        pg.destroy()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def drill(drill_services: Drill) -> Drill:
    """The private services, reset for this drill (PostgreSQL and Redis running)."""
    if not drill_services.pg.running():
        drill_services.pg.start()
    if not drill_services.redis.ping():
        drill_services.redis.start()
    drill_services.reset()
    return drill_services


# --- small helpers shared by the drills ----------------------------------------------------

def wait_for(predicate, timeout: float, what: str, *procs: Proc, every: float = 0.2) -> None:
    """Poll ``predicate`` until true; fail (with the processes' output) on timeout or exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        for proc in procs:
            if not proc.alive():
                pytest.fail(f"{proc.name} exited while waiting for {what}:\n"
                            f"{proc.output()[-3000:]}")
        time.sleep(every)
    tails = "\n".join(f"--- {p.name}:\n{p.output()[-2000:]}" for p in procs)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")


def scalar(engine: sa.Engine, sql: str, **params):
    """One value from the private database; None while it is unreachable."""
    try:
        with engine.connect() as connection:
            return connection.scalar(sa.text(sql), params)
    except sa.exc.OperationalError:
        return None


def assert_batch_complete_without_duplicates(engine: sa.Engine, batch_id: int,
                                             pages: int) -> None:
    """The batch completed, every site crawled ``pages`` pages, no page stored twice."""
    with engine.connect() as connection:
        status = connection.scalar(sa.text("SELECT status FROM batches WHERE id = :id"),
                                   {"id": batch_id})
        sites = connection.execute(sa.text(
            "SELECT id, status, error, report->>'pages_crawled' FROM sites "
            "WHERE batch_id = :id ORDER BY position"), {"id": batch_id}).all()
        duplicates = connection.execute(sa.text(
            "SELECT site_id, url, count(*) FROM pages GROUP BY site_id, url "
            "HAVING count(*) > 1")).all()
        running = connection.scalar(sa.text(
            "SELECT count(*) FROM sites WHERE status = 'running'"))
    assert status == "completed", (status, sites)
    assert [(s[1], s[3]) for s in sites] == [("completed", str(pages))] * len(sites), sites
    assert duplicates == []
    assert running == 0
