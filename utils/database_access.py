"""Engines, per backend, and the unit-of-work session for workers, scripts and the CLI.

PostgreSQL: QueuePool with a small ``pool_timeout``, a ping of connections idle longer than
``DB_PING_IDLE_SECONDS`` (``pool_pre_ping`` when 0), ``pool_recycle``,
``application_name=rivalscope-<role>`` and per-connection timeouts. Behind a transaction
pooler (``DB_POOLER=transaction``) there is no startup ``options`` and no session state:
NullPool, and timeouts are set per role on the server.
SQLite: WAL, ``busy_timeout`` and ``foreign_keys=ON`` on every connect.

Fork safety: every engine built here is disposed (``close=False``) in a forked child,
whatever forked, and a checkout refuses a connection created in another process.
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Mapping
from contextlib import AbstractContextManager
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from utils.db_session_manager import SESSION_MANAGER, SessionManager
from utils.storable import clean_parameters, dumps_storable

_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def normalize_database_url(url: str) -> str:
    """Map ``postgres://`` and ``postgresql://`` to ``postgresql+psycopg2://``."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def backend_of(url: str) -> str:
    """'postgresql' or 'sqlite' (the dialect name)."""
    return make_url(normalize_database_url(url)).get_backend_name()


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages."""
    return make_url(normalize_database_url(url)).render_as_string(hide_password=True)


def engine_options(settings: Mapping[str, Any], role: str) -> dict[str, Any]:
    """Keyword arguments for ``create_engine`` for this backend, pooler mode and role.

    ``settings`` is a mapping with the Config keys (``app.config`` or ``vars(Config)``).
    """
    config = SimpleNamespace(**{k: settings[k] for k in settings if k.isupper()})
    url = normalize_database_url(config.DATABASE_URL)
    if backend_of(url) == "sqlite":
        return {"connect_args": {"timeout": config.SQLITE_BUSY_TIMEOUT_MS / 1000,
                                 "check_same_thread": False},
                "pool_size": config.DB_POOL_SIZE, "max_overflow": config.DB_MAX_OVERFLOW,
                "pool_timeout": config.DB_POOL_TIMEOUT, "json_serializer": dumps_storable}
    connect_args: dict[str, Any] = {
        "application_name": f"rivalscope-{role}",
        "connect_timeout": config.DB_CONNECT_TIMEOUT,
        "keepalives": 1,
        "keepalives_idle": 30,
    }
    if config.DB_POOLER == "transaction":
        return {"poolclass": NullPool, "connect_args": connect_args,
                "json_serializer": dumps_storable}
    connect_args["options"] = (
        f"-c statement_timeout={config.DB_STATEMENT_TIMEOUT_MS}"
        f" -c idle_in_transaction_session_timeout={config.DB_IDLE_IN_TX_TIMEOUT_MS}"
    )
    return {
        "pool_size": config.DB_POOL_SIZE,
        "max_overflow": config.DB_MAX_OVERFLOW,
        "pool_timeout": config.DB_POOL_TIMEOUT,
        "pool_recycle": config.DB_POOL_RECYCLE,
        # Pinging every checkout costs a round trip per request; install_engine_events pings
        # only connections idle longer than DB_PING_IDLE_SECONDS (0: ping every checkout).
        "pool_pre_ping": config.DB_PING_IDLE_SECONDS <= 0,
        "connect_args": connect_args,
        "json_serializer": dumps_storable,
    }


def build_engine(url: str, options: dict[str, Any], manager: SessionManager = SESSION_MANAGER
                 ) -> Engine:
    """Create an engine and install the connect, fork-safety and tracking events."""
    engine = create_engine(normalize_database_url(url), **options)
    busy_seconds = options.get("connect_args", {}).get("timeout", 5)
    install_engine_events(engine, manager, busy_timeout_ms=int(busy_seconds * 1000))
    return engine


def install_engine_events(engine: Engine, manager: SessionManager = SESSION_MANAGER, *,
                          busy_timeout_ms: int = 5000, ping_idle_seconds: float = 5.0) -> None:
    """SQLite pragmas, storable parameters, the pid check on checkout and pool tracking for
    the session manager. Idempotent: an engine gets its events once."""
    if engine in _ENGINES:
        return
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas(busy_timeout_ms))
    event.listen(engine, "before_cursor_execute", _storable_parameters, retval=True)
    event.listen(engine, "connect", _remember_pid)
    event.listen(engine.pool, "checkout", _refuse_foreign_pid)
    if engine.dialect.name == "postgresql" and ping_idle_seconds > 0:
        event.listen(engine.pool, "checkin", _remember_checkin)
        event.listen(engine.pool, "checkout", _ping_if_idle(ping_idle_seconds))
    if engine.dialect.driver == "psycopg2":
        event.listen(engine.pool, "checkin", _end_autocommit)
    event.listen(engine.pool, "checkout", manager.on_checkout)
    event.listen(engine.pool, "checkin", manager.on_checkin)
    manager.track_engine(engine)
    _ENGINES.add(engine)


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()
    return on_connect


def _storable_parameters(_conn: Any, _cursor: Any, statement: str, parameters: Any,
                         _context: Any, _executemany: bool) -> tuple[str, Any]:
    return statement, clean_parameters(parameters)


def _remember_pid(_dbapi_connection: Any, record: Any) -> None:
    record.info["pid"] = os.getpid()
    record.info["checked_in_at"] = time.monotonic()


def _remember_checkin(_dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info["checked_in_at"] = time.monotonic()


def _ping_if_idle(idle_seconds: float) -> Any:
    """A checkout event that pings only a connection idle longer than ``idle_seconds``:
    a busy pool pays no round trip, and a connection that sat through a database restart is
    replaced before use (raising DisconnectionError makes the pool retry with a new one)."""

    def ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("checked_in_at", 0.0) <= idle_seconds:
            return
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_connection.rollback()  # hand the connection out as idle as it came in
        except Exception as error:  # noqa: BLE001 - any failure means: not usable
            raise exc.DisconnectionError(f"idle connection failed its ping: {error}") from error
    return ping


AUTOCOMMIT_UNTIL_CHECKIN = "rivalscope_autocommit_until_checkin"


def autocommit_until_checkin(connection: Connection) -> bool:
    """Run a checked-out psycopg2 connection's statements without a transaction until it
    goes back to the pool (True when done; False for another driver).

    psycopg2 sends ``BEGIN`` before the first statement of a transaction and the pool sends
    ``ROLLBACK`` on return: two round trips a read does not need. This flips the driver's
    ``autocommit`` flag, which costs nothing while the isolation level stays psycopg2's
    default (SQLAlchemy's ``isolation_level="AUTOCOMMIT"`` option resets the level
    explicitly on return, and leaving autocommit then costs a ``SET`` round trip). The
    checkin event puts the flag back, so the pool only ever holds connections in their
    usual mode. Call it before the connection's first statement (a connection already in a
    transaction is left as it is: False)."""
    if connection.dialect.driver != "psycopg2":
        return False
    fairy = connection.connection
    dbapi_connection = fairy.dbapi_connection
    if dbapi_connection is None:
        return False
    try:
        if dbapi_connection.autocommit:
            return True
        if dbapi_connection.info.transaction_status != _PSYCOPG2_IDLE:
            return False  # a transaction began already: it goes on as usual
        dbapi_connection.autocommit = True
    except Exception:  # noqa: BLE001 - a broken connection: the first statement will say so
        return False
    fairy.info[AUTOCOMMIT_UNTIL_CHECKIN] = True
    return True


_PSYCOPG2_IDLE = 0  # psycopg2.extensions.TRANSACTION_STATUS_IDLE


def _end_autocommit(dbapi_connection: Any, record: Any) -> None:
    """Checkin: a connection flipped by ``autocommit_until_checkin`` returns to the pool in
    transaction mode, or not at all (a broken one is invalidated)."""
    if record is None or not record.info.pop(AUTOCOMMIT_UNTIL_CHECKIN, False) \
            or dbapi_connection is None:
        return
    try:
        dbapi_connection.autocommit = False
    except Exception as error:  # noqa: BLE001 - closed or broken: never reuse it as it is
        record.invalidate(error)


def _refuse_foreign_pid(_dbapi_connection: Any, record: Any, proxy: Any) -> None:
    pid = os.getpid()
    if record.info.get("pid") != pid:
        # A connection inherited through fork: never use the parent's socket.
        record.dbapi_connection = proxy.dbapi_connection = None
        raise exc.DisconnectionError(
            f"connection belongs to pid {record.info.get('pid')}, not {pid}"
        )


def _dispose_inherited_pools() -> None:
    """In a forked child: drop the parent's pooled connections without closing their sockets."""
    for engine in list(_ENGINES):
        engine.dispose(close=False)
    SESSION_MANAGER.after_fork()


os.register_at_fork(after_in_child=_dispose_inherited_pools)


def get_sync_session(engine: Engine, *, scope: str = "thread", owner: str = "script"
                     ) -> AbstractContextManager[Session]:
    """A unit of work: commit on success, roll back on error, always close.

    For workers, scripts and the CLI; web requests use ``db.session``.
    """
    return SESSION_MANAGER.managed_session(engine, scope=scope, owner=owner)
