"""Engine-level maintenance: terminate this application's idle-in-transaction backends,
VACUUM/ANALYZE under a lock that keeps two runs from overlapping, broadcast a session reap to
every worker, and measure the broker queue.

PostgreSQL: ``VACUUM (ANALYZE)`` runs per table on an AUTOCOMMIT connection (VACUUM can
never run inside a transaction) while a second connection holds
``pg_try_advisory_xact_lock`` in an open transaction. A transaction-level lock pins one
server connection for exactly that transaction, so it also holds behind PgBouncer in
transaction mode, where a session-level advisory lock would not. The holder is never
mistaken for a leaked session: the idle-in-transaction reaper skips it.
SQLite: ``ANALYZE`` per table, ``PRAGMA optimize``, and ``VACUUM`` when the free list is
worth reclaiming, under an exclusive ``flock`` on a file next to the database.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from celery import Celery
from sqlalchemy import Engine
from sqlalchemy.pool import NullPool

from utils.database_access import backend_of, build_engine, engine_options
from utils.error_text import error_line

log = logging.getLogger(__name__)

APP_NAME_PATTERN = "rivalscope-%"
# A stable positive key (fits in the 32-bit objid of pg_locks, classid 0).
OPTIMIZE_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"rivalscope.optimize_database").digest()[:4], "big") & 0x7FFFFFFF
SKIPPED_REASON = "another run holds the lock"
VACUUM_MIN_FREE_PAGES = 64
VACUUM_MIN_FREE_RATIO = 0.10
_MEMORY_LOCK = threading.Lock()


def maintenance_engine(settings: Mapping[str, Any], role: str) -> Engine:
    """A NullPool engine for maintenance: ``MAINTENANCE_DATABASE_URL`` or ``DATABASE_URL``;
    on PostgreSQL without a pooler, no statement or idle-in-transaction timeout (a VACUUM
    may take long; the lock holder waits idle in its transaction)."""
    url = settings.get("MAINTENANCE_DATABASE_URL") or settings["DATABASE_URL"]
    direct = bool(settings.get("MAINTENANCE_DATABASE_URL"))
    merged = {**settings, "DATABASE_URL": url}
    if direct:
        merged["DB_POOLER"] = ""
    options = engine_options(merged, role)
    for key in ("pool_size", "max_overflow", "pool_timeout", "pool_recycle"):
        options.pop(key, None)
    options["poolclass"] = NullPool
    connect_args = dict(options.get("connect_args", {}))
    if backend_of(url) == "postgresql" and "options" in connect_args:
        connect_args["options"] = ("-c statement_timeout=0"
                                   " -c idle_in_transaction_session_timeout=0")
    options["connect_args"] = connect_args
    return build_engine(url, options)


# --- idle in transaction ---------------------------------------------------------------
IDLE_IN_TX_SQL = sa.text("""
    SELECT a.pid, a.application_name, a.usename,
           EXTRACT(EPOCH FROM now() - a.state_change) AS idle_s,
           left(a.query, 200) AS query
    FROM pg_stat_activity a
    WHERE a.datname = current_database()
      AND a.pid <> pg_backend_pid()
      AND a.application_name LIKE :pattern
      AND a.state IN ('idle in transaction', 'idle in transaction (aborted)')
      AND a.state_change < now() - make_interval(secs => :older_than)
      AND NOT EXISTS (
          SELECT 1 FROM pg_locks l
          WHERE l.pid = a.pid AND l.locktype = 'advisory' AND l.granted
            AND l.classid = 0 AND l.objid = :lock_key AND l.objsubid = 1)
    ORDER BY a.state_change
""")


def terminate_idle_in_transaction(engine: Engine, older_than: float,
                                  pattern: str = APP_NAME_PATTERN) -> list[dict[str, Any]]:
    """PostgreSQL: terminate backends of this application (``application_name LIKE
    pattern``) idle in a transaction longer than ``older_than`` seconds. Never the calling
    backend, never another application's, never a maintenance-lock holder. Returns one
    entry per backend with ``terminated`` true or false (and the error)."""
    if engine.dialect.name != "postgresql":
        return []
    results: list[dict[str, Any]] = []
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        rows = connection.execute(IDLE_IN_TX_SQL, {
            "pattern": pattern, "older_than": float(older_than),
            "lock_key": OPTIMIZE_LOCK_KEY}).mappings().all()
        for row in rows:
            entry = {"pid": row["pid"], "application_name": row["application_name"],
                     "user": row["usename"], "idle_s": round(float(row["idle_s"]), 1),
                     "query": row["query"]}
            try:
                entry["terminated"] = bool(connection.scalar(
                    sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": row["pid"]}))
            except sa.exc.DBAPIError as exc:  # e.g. permission denied
                entry["terminated"] = False
                entry["error"] = error_line(exc, 200)
            results.append(entry)
    return results


# --- the maintenance lock ---------------------------------------------------------------
@contextmanager
def maintenance_lock(engine: Engine, key: int = OPTIMIZE_LOCK_KEY) -> Iterator[bool]:
    """Yield True when this run holds the lock, False when another run does."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as holder, holder.begin():
            # The holder waits idle in its transaction while VACUUM runs elsewhere.
            holder.execute(sa.text("SET LOCAL idle_in_transaction_session_timeout = 0"))
            yield bool(holder.scalar(sa.text("SELECT pg_try_advisory_xact_lock(:key)"),
                                     {"key": key}))
        return  # commit ends the transaction and releases the lock
    path = _sqlite_lock_path(engine)
    if path is None:
        acquired = _MEMORY_LOCK.acquire(blocking=False)
        try:
            yield acquired
        finally:
            if acquired:
                _MEMORY_LOCK.release()
        return
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sqlite_lock_path(engine: Engine) -> Path | None:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).with_name(Path(database).name + ".maintenance.lock")


# --- optimize ---------------------------------------------------------------------------
def optimize(engine: Engine, tables: Sequence[str],
             on_locked: Callable[[], None] | None = None) -> dict[str, Any]:
    """VACUUM/ANALYZE (PostgreSQL) or ANALYZE/optimize/VACUUM (SQLite) under the lock.

    Returns ``{"status": "ok" | "skipped", "backend", "tables": {name: ms}, ...}``;
    ``on_locked`` is called while the lock is held, before any work.
    """
    backend = engine.dialect.name
    with maintenance_lock(engine) as locked:
        if not locked:
            return {"status": "skipped", "reason": SKIPPED_REASON, "backend": backend,
                    "tables": {}}
        if on_locked is not None:
            on_locked()
        if backend == "postgresql":
            return _optimize_postgresql(engine, tables)
        return _optimize_sqlite(engine, tables)


def _timed(connection: sa.Connection, statement: str) -> int:
    started = time.perf_counter()
    connection.execute(sa.text(statement))
    return int(round((time.perf_counter() - started) * 1000))


def _optimize_postgresql(engine: Engine, tables: Sequence[str]) -> dict[str, Any]:
    quote = engine.dialect.identifier_preparer.quote
    durations: dict[str, int] = {}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in tables:
            durations[table] = _timed(connection, f"VACUUM (ANALYZE) {quote(table)}")
    return {"status": "ok", "backend": "postgresql", "tables": durations}


def _optimize_sqlite(engine: Engine, tables: Sequence[str]) -> dict[str, Any]:
    quote = engine.dialect.identifier_preparer.quote
    durations: dict[str, int] = {}
    steps: dict[str, int] = {}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in tables:
            durations[table] = _timed(connection, f"ANALYZE {quote(table)}")
        steps["optimize"] = _timed(connection, "PRAGMA optimize")
        free = connection.scalar(sa.text("PRAGMA freelist_count")) or 0
        pages = connection.scalar(sa.text("PRAGMA page_count")) or 0
        worthwhile = free >= VACUUM_MIN_FREE_PAGES and free >= VACUUM_MIN_FREE_RATIO * pages
        if worthwhile:
            steps["vacuum"] = _timed(connection, "VACUUM")
        free_after = connection.scalar(sa.text("PRAGMA freelist_count")) or 0
    return {"status": "ok", "backend": "sqlite", "tables": durations, "steps": steps,
            "freelist_before": free, "page_count": pages, "vacuumed": worthwhile,
            "freelist_after": free_after}


# --- broadcast reap ---------------------------------------------------------------------
REAP_COMMAND = "reap_db_sessions"
STATS_COMMAND = "db_session_stats"


def broadcast_reap(celery: Celery, max_age: float, timeout: float,
                   destination: Sequence[str] | None = None) -> dict[str, Any]:
    """Ask every worker (or ``destination``) to reap its own session registry; returns
    ``{node: reply}`` of the replies received within ``timeout`` seconds."""
    replies = celery.control.broadcast(
        REAP_COMMAND, arguments={"max_age": max_age}, reply=True, timeout=timeout,
        destination=list(destination) if destination else None) or []
    merged: dict[str, Any] = {}
    for reply in replies:
        merged.update(reply)
    return merged


# --- queue depth ------------------------------------------------------------------------
REDIS_PRIORITY_SEPARATOR = "\x06\x16"
REDIS_PRIORITY_STEPS = (3, 6, 9)


def queue_depth(celery: Celery, queue: str = "celery") -> dict[str, Any]:
    """Messages waiting in ``queue``: Redis LLEN (with priority sub-lists), or the number
    of message files for the filesystem transport."""
    url = str(celery.conf.broker_url)
    try:
        if url.startswith("filesystem"):
            folder = (celery.conf.broker_transport_options or {}).get("data_folder_in", "")
            suffix = f"{queue}.msg"
            count = sum(1 for name in os.listdir(folder) if name.partition(".")[2] == suffix)
            return {"queue": queue, "transport": "filesystem", "depth": count}
        if url.startswith(("redis://", "rediss://")):
            import redis

            client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
            try:
                names = [queue] + [f"{queue}{REDIS_PRIORITY_SEPARATOR}{step}"
                                   for step in REDIS_PRIORITY_STEPS]
                count = sum(int(client.llen(name)) for name in names)
            finally:
                client.close()
            return {"queue": queue, "transport": "redis", "depth": count}
    except Exception as exc:  # noqa: BLE001 - an admin figure, never an error page
        return {"queue": queue, "transport": url.split(":", 1)[0], "depth": None,
                "error": str(exc)[:200]}
    return {"queue": queue, "transport": url.split(":", 1)[0], "depth": None,
            "error": "unsupported transport"}
