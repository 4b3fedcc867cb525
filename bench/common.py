"""Shared plumbing for the benchmarks: the bench database and broker, child processes,
RSS and connection sampling, a bounded HTTP load generator and the RESULT line.

Every benchmark runs from the repository root as ``python bench/<name>.py`` with the
project's venv. Settings come from the environment:

- ``BENCH_PG_URL``     server to use (default ``postgresql://postgres@127.0.0.1:5432/postgres``)
- ``BENCH_DATABASE``   database the bench (re)creates (default ``rivalscope_bench``)
- ``BENCH_REDIS_URL``  broker (default ``redis://127.0.0.1:6379/11``; flushed before and after)
- ``BENCH_KEEP_LOGS``  set to keep the child processes' logs (a temp folder) after the run
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from tests.processes import ChildProcess as Child  # noqa: E402
from tests.processes import spawn  # noqa: E402

PG_SERVER_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BENCH_DATABASE = os.environ.get("BENCH_DATABASE", "rivalscope_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
QUEUE = "rivalscope-bench"
PYTHON = sys.executable
INSTANCE = Path(tempfile.mkdtemp(prefix="rivalscope-bench-"))  # child logs; removed at exit
if not os.environ.get("BENCH_KEEP_LOGS"):
    atexit.register(shutil.rmtree, INSTANCE, True)


def _pg_url(database: str) -> str:
    url = sa.engine.make_url(PG_SERVER_URL.replace("postgresql://", "postgresql+psycopg2://", 1))
    return url.set(database=database).render_as_string(hide_password=False)


DATABASE_URL = _pg_url(BENCH_DATABASE).replace("postgresql+psycopg2://", "postgresql://", 1)


def log(message: str) -> None:
    """Progress on stderr (stdout carries the figures)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_engine(database: str = BENCH_DATABASE) -> sa.Engine:
    """A small NullPool engine (autocommit) for the bench's own bookkeeping queries."""
    return sa.create_engine(_pg_url(database), poolclass=NullPool, isolation_level="AUTOCOMMIT")


def bench_env(**extra: str) -> dict[str, str]:
    """Environment for every Rivalscope process the bench starts."""
    env = dict(os.environ)
    env.update({
        "RIVALSCOPE_ENV": "development",
        "RIVALSCOPE_INSTANCE": str(INSTANCE),
        "FLASK_APP": "app.py",
        "DATABASE_URL": DATABASE_URL,
        "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
        "FETCH_ALLOW_NETWORKS": "127.0.0.0/8",
        "FETCH_DELAY_SECONDS": "0",
        "SECRET_KEY": "bench-secret",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def prepare_database() -> None:
    """Drop and recreate the bench database, then ``flask db upgrade`` against it."""
    admin = pg_engine(sa.engine.make_url(PG_SERVER_URL).database or "postgres")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{BENCH_DATABASE}"'))
    admin.dispose()
    flask_cli("db", "upgrade")
    log(f"database {BENCH_DATABASE} created and migrated")


def flask_cli(*args: str) -> str:
    """Run ``flask <args>`` against the bench database; returns its output."""
    done = subprocess.run([PYTHON, "-m", "flask", *args], cwd=ROOT, env=bench_env(
        RIVALSCOPE_ROLE="cli"), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def flush_redis() -> None:
    """Empty the bench's Redis database (queues, unacked messages)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()


def redis_client():
    import redis

    return redis.Redis.from_url(REDIS_URL)


# --- child processes ------------------------------------------------------------------------

def start_child(name: str, argv: list[str], env: dict[str, str]) -> Child:
    return spawn(name, argv, env, INSTANCE / f"{name}.log", ROOT)


def start_gunicorn(name: str, target: str, port: int, env: dict[str, str], *,
                   workers: int, threads: int) -> Child:
    """gunicorn with the settings every web bench uses for both sides."""
    argv = [PYTHON, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--threads", str(threads), "--worker-class", "gthread", "--timeout", "60",
            "--access-logfile", "-", target]
    child = start_child(name, argv, env)
    wait_http(f"http://127.0.0.1:{port}/health", child)
    return child


def start_worker(name: str, target: str, env: dict[str, str], *, concurrency: int,
                 queue: str = QUEUE) -> Child:
    """One ``celery worker`` process, threads pool."""
    argv = [PYTHON, "-m", "celery", "-A", target, "worker", "--pool", "threads",
            "--concurrency", str(concurrency), "-Q", queue, "--without-gossip",
            "--without-mingle", "--loglevel", "INFO", "-n", f"{name}@%h"]
    return start_child(name, argv, env)


def wait_http(url: str, child: Child, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited:\n{child.tail()}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{child.name} did not answer {url}:\n{child.tail()}")


# --- sampling -------------------------------------------------------------------------------

def proc_status_kb(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` figure in kB (VmRSS, VmHWM); 0 when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pg_connections(engine: sa.Engine, application_name: str) -> int:
    """Backends of the bench database opened by ``application_name``."""
    with engine.connect() as connection:
        return connection.scalar(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = :name"), {"name": application_name}) or 0


@dataclass
class Sampler:
    """Samples RSS of a pid and PostgreSQL connections of an application every ``every`` s."""

    pid: int
    application_name: str
    every: float = 1.0
    extra: Callable[[], int] | None = None
    samples: list[tuple[float, int, int, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Sampler:
        self._engine = pg_engine()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            try:
                conns = pg_connections(self._engine, self.application_name)
                extra = self.extra() if self.extra else 0
            except sa.exc.SQLAlchemyError:
                conns, extra = -1, -1
            self.samples.append((time.monotonic() - started,
                                 proc_status_kb(self.pid, "VmRSS"), conns, extra))
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._engine.dispose()

    @property
    def peak_connections(self) -> int:
        return max((s[2] for s in self.samples), default=0)


# --- HTTP load ------------------------------------------------------------------------------

@dataclass
class LoadStats:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    statuses: dict[int, int]

    @classmethod
    def combine(cls, parts: list[LoadStats]) -> LoadStats:
        """Several rounds as one: requests and seconds add up."""
        statuses: dict[int, int] = {}
        for part in parts:
            for key, value in part.statuses.items():
                statuses[key] = statuses.get(key, 0) + value
        return cls(sum(p.requests for p in parts), sum(p.errors for p in parts),
                   sum(p.seconds for p in parts), [x for p in parts for x in p.latencies_ms],
                   statuses)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    def line(self, label: str) -> str:
        return (f"{label:<28} {self.rps:8.1f} req/s   p50 {self.percentile(50):7.1f} ms   "
                f"p99 {self.percentile(99):7.1f} ms   requests {self.requests:6d}   "
                f"errors {self.errors}")


def run_load(request: Callable[[httpx.Client], httpx.Response], *, duration: float,
             threads: int, warmup: float = 2.0, ok: tuple[int, ...] = (200, 201)) -> LoadStats:
    """``threads`` threads each with a keep-alive client call ``request`` in a loop for
    ``warmup`` (not counted) then ``duration`` seconds."""
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counts = {"requests": 0, "errors": 0}
    begin = time.monotonic() + warmup
    end = begin + duration

    def worker() -> None:
        local_lat: list[float] = []
        local_status: dict[int, int] = {}
        errors = 0
        with httpx.Client(timeout=30) as client:
            while True:
                t0 = time.monotonic()
                if t0 >= end:
                    break
                try:
                    status = request(client).status_code
                except httpx.HTTPError:
                    status = -1
                t1 = time.monotonic()
                if t0 < begin:
                    continue
                local_lat.append((t1 - t0) * 1000)
                local_status[status] = local_status.get(status, 0) + 1
                if status not in ok:
                    errors += 1
        with lock:
            latencies.extend(local_lat)
            counts["requests"] += len(local_lat)
            counts["errors"] += errors
            for key, value in local_status.items():
                statuses[key] = statuses.get(key, 0) + value

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(warmup + duration + 60)
    return LoadStats(counts["requests"], counts["errors"], duration, latencies, statuses)


def result_line(name: str, **fields: object) -> str:
    """The one machine-readable line each benchmark ends with."""
    parts = " ".join(f"{key}={value}" for key, value in fields.items())
    line = f"RESULT name={name} {parts}"
    print(line, flush=True)
    return line


def ratio(ours: float, baseline: float) -> str:
    return f"{ours / baseline:.2f}" if baseline else "nan"


# --- Rivalscope in this process (to submit batches and read results) -------------------------

def rivalscope_app():
    """The Rivalscope Flask app configured like the bench's child processes (role cli)."""
    os.environ.update(bench_env(RIVALSCOPE_ROLE="cli"))
    from app import create_app

    return create_app(role="cli")


def wait_worker_ready(child: Child, timeout: float = 60) -> None:
    """Wait for the worker's 'ready.' log line (the worker runs at INFO for this)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited:\n{child.tail()}")
        if " ready." in child.logfile.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{child.name} never became ready:\n{child.tail()}")


# --- process trees (a worker and whatever it forked) ------------------------------------------

def tree_pids(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its live descendants, plus what their reaped children
    used (cutime/cstime)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for member in tree_pids(pid):
        try:
            fields = _stat_fields(member)
        except (OSError, ValueError):
            continue
        total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return total / ticks


def own_cpu_seconds(pid: int, *, system_only: bool = False) -> float:
    """User + system CPU of ``pid`` alone (its threads, none of its children), or only its
    system time."""
    try:
        fields = _stat_fields(pid)
    except (OSError, ValueError):
        return 0.0
    used = fields[12:13] if system_only else fields[11:13]
    return sum(int(value) for value in used) / os.sysconf("SC_CLK_TCK")


def tree_rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and its live descendants, in kB."""
    return sum(proc_status_kb(member, "VmRSS") for member in tree_pids(pid))


class TreeSampler:
    """Peak summed RSS of several process trees, sampled every ``every`` s."""

    def __init__(self, pids: list[int], every: float = 0.2) -> None:
        self.pids, self.every, self.peak_kb = pids, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, sum(tree_rss_kb(pid) for pid in self.pids))
            self._stop.wait(self.every)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.peak_kb
