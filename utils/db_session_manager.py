"""A registry of every open session and checked-out connection in this process.

Each entry knows its scope (request | task | thread | cli), its owner (endpoint or task
name and id), its thread and when it was opened. ``reap_stale`` closes the sessions whose
owning thread is gone and reports live ones past an age, with where they were opened.
There is one registry per process (``SESSION_MANAGER``); pool events feed it.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

SCOPES = ("request", "task", "thread", "cli")
THIS_FILE = __file__


def _alive(thread_ref: Callable[[], threading.Thread | None]) -> bool:
    """Judged on the thread object itself: a dead thread's ident is reused by new threads."""
    thread = thread_ref()
    return thread is not None and thread.is_alive()


def _caller_frames(skip: int, depth: int = 4) -> str:
    """Where a session was opened: a few 'file:line function' frames, cheaply (no source
    lines are read, unlike ``traceback``)."""
    frame = sys._getframe(skip)
    parts = []
    while frame is not None and len(parts) < depth:
        code = frame.f_code
        if code.co_filename != THIS_FILE and "contextlib" not in code.co_filename:
            parts.append(f"{os.path.basename(code.co_filename)}:{frame.f_lineno} "
                         f"{code.co_name}")
        frame = frame.f_back
    return " <- ".join(parts)


@dataclass
class SessionEntry:
    """What the registry knows about one open session."""

    session_ref: Callable[[], Session | None]
    scope: str
    owner: str
    thread_ref: Callable[[], threading.Thread | None]
    thread_name: str
    opened_at: float
    opened_where: str

    @property
    def thread_alive(self) -> bool:
        return _alive(self.thread_ref)

    def describe(self, now: float) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "owner": self.owner,
            "thread": self.thread_name,
            "age_s": round(now - self.opened_at, 3),
            "opened_where": self.opened_where,
        }


class TransactionDuringNetworkIO(RuntimeError):
    """A network request was about to run while this thread held a database transaction."""


@dataclass
class CheckoutEntry:
    """A pooled connection currently lent out."""

    thread_ref: Callable[[], threading.Thread | None]
    thread_name: str
    checked_out_at: float


@dataclass
class SessionManager:
    """Tracks sessions and connections of this process; thread-safe."""

    role: str = "web"
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _sessions: dict[int, SessionEntry] = field(default_factory=dict)
    _checkouts: dict[int, CheckoutEntry] = field(default_factory=dict)
    _engines: weakref.WeakSet = field(default_factory=weakref.WeakSet)
    _local: threading.local = field(default_factory=threading.local)
    _factories: weakref.WeakKeyDictionary = field(default_factory=weakref.WeakKeyDictionary)
    reaped_total: int = 0
    leaked_total: int = 0
    network_violations: list[dict[str, Any]] = field(default_factory=list)

    # --- sessions -----------------------------------------------------------------------
    def register(self, session: Session, *, scope: str, owner: str) -> None:
        """Record an open session (idempotent)."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        thread = threading.current_thread()
        entry = SessionEntry(
            session_ref=weakref.ref(session, self._make_finalizer(id(session))),
            scope=scope,
            owner=owner,
            thread_ref=weakref.ref(thread),
            thread_name=thread.name,
            opened_at=time.time(),
            opened_where=_caller_frames(skip=2),
        )
        with self._lock:
            self._sessions.setdefault(id(session), entry)

    def _make_finalizer(self, key: int) -> Callable[[Any], None]:
        def finalize(_ref: Any) -> None:
            # A registered session collected without being unregistered: a leak.
            with self._lock:
                if self._sessions.pop(key, None) is not None:
                    self.leaked_total += 1
        return finalize

    def unregister(self, session: Session) -> None:
        """Forget a closed session."""
        with self._lock:
            self._sessions.pop(id(session), None)

    def open_sessions(self) -> list[dict[str, Any]]:
        """Describe every registered session."""
        now = time.time()
        with self._lock:
            return [entry.describe(now) for entry in self._sessions.values()]

    @contextmanager
    def managed_session(self, engine: Engine, *, scope: str = "thread", owner: str = "",
                        commit: bool = True) -> Iterator[Session]:
        """Open, register and always close a session; commit on success if ``commit``."""
        session = self._factory(engine)()
        self.register(session, scope=scope, owner=owner or threading.current_thread().name)
        try:
            yield session
            if commit:
                session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
            self.unregister(session)

    def _factory(self, engine: Engine) -> sessionmaker:
        factory = self._factories.get(engine)
        if factory is None:
            factory = sessionmaker(bind=engine, expire_on_commit=False)
            self._factories[engine] = factory
        return factory

    # --- the thread-scoped session of the running task -----------------------------------
    def bind_thread_session(self, session: Session | None) -> None:
        """Make ``session`` the current thread's task session (None clears it)."""
        self._local.session = session

    def thread_session(self) -> Session:
        """The session owned by the task running on this thread."""
        session = getattr(self._local, "session", None)
        if session is None:
            raise RuntimeError("no task session on this thread")
        return session

    # --- no transaction across network I/O -------------------------------------------------
    def transactions_on_this_thread(self) -> list[str]:
        """Owners of this thread's registered sessions that are inside a transaction."""
        thread = threading.current_thread()
        with self._lock:
            entries = list(self._sessions.values())
        owners = []
        for entry in entries:
            session = entry.session_ref()
            if entry.thread_ref() is thread and session is not None and session.in_transaction():
                owners.append(entry.owner)
        return owners

    def guard_network_io(self, target: str, *, strict: bool) -> None:
        """Called before a network request: a session of this thread still inside a
        transaction would hold a connection (and its locks) across the wait. Recorded
        always; raised when ``strict`` (tests)."""
        owners = self.transactions_on_this_thread()
        if not owners:
            return
        violation = {"target": target[:200], "owners": owners, "pid": os.getpid(),
                     "thread": threading.current_thread().name, "at": time.time()}
        with self._lock:
            self.network_violations.append(violation)
            del self.network_violations[:-50]
        if not strict:
            logging.getLogger(__name__).warning(
                "network request to %s while a transaction is open in %s", target[:200], owners)
            return
        if strict:
            raise TransactionDuringNetworkIO(
                f"network request to {target[:200]} while a transaction is open in {owners}")

    def take_network_violations(self) -> list[dict[str, Any]]:
        """The violations recorded since the last call (and forget them)."""
        with self._lock:
            taken, self.network_violations = self.network_violations, []
        return taken

    # --- connections ----------------------------------------------------------------------
    def track_engine(self, engine: Engine) -> None:
        self._engines.add(engine)

    def on_checkout(self, _dbapi: Any, record: Any, _proxy: Any) -> None:
        thread = threading.current_thread()
        with self._lock:
            self._checkouts[id(record)] = CheckoutEntry(weakref.ref(thread), thread.name,
                                                        time.time())

    def on_checkin(self, _dbapi: Any, record: Any) -> None:
        with self._lock:
            self._checkouts.pop(id(record), None)

    def checked_out(self) -> int:
        """Connections currently lent out by this process's pools."""
        with self._lock:
            return len(self._checkouts)

    def pool_figures(self) -> list[dict[str, Any]]:
        """Size, checked-in, checked-out and overflow of each engine's pool."""
        figures = []
        for engine in list(self._engines):
            pool = engine.pool
            item: dict[str, Any] = {"url": engine.url.render_as_string(hide_password=True),
                                    "pool": type(pool).__name__}
            for name in ("size", "checkedin", "checkedout", "overflow"):
                method = getattr(pool, name, None)
                if callable(method):
                    item[name] = method()
            figures.append(item)
        return figures

    # --- reaping and stats ---------------------------------------------------------------
    def reap_stale(self, max_age: float) -> dict[str, Any]:
        """Close sessions whose thread died; report live ones older than ``max_age`` seconds."""
        now = time.time()
        reaped: list[dict[str, Any]] = []
        stale: list[dict[str, Any]] = []
        with self._lock:
            entries = list(self._sessions.items())
        for key, entry in entries:
            if not entry.thread_alive:
                session = entry.session_ref()
                if session is not None:
                    try:
                        session.close()
                    except Exception:  # noqa: BLE001 - a broken session is still reaped
                        pass
                with self._lock:
                    self._sessions.pop(key, None)
                    self.reaped_total += 1
                reaped.append(entry.describe(now))
            elif now - entry.opened_at > max_age:
                stale.append(entry.describe(now))
        with self._lock:
            for key, checkout in list(self._checkouts.items()):
                if not _alive(checkout.thread_ref):
                    self._checkouts.pop(key, None)
        return {"reaped": reaped, "stale": stale, "pid": os.getpid()}

    def stats(self) -> dict[str, Any]:
        """Figures for this process: sessions by scope, oldest age, connections, pools."""
        now = time.time()
        with self._lock:
            entries = list(self._sessions.values())
            checked_out = len(self._checkouts)
        by_scope = {scope: 0 for scope in SCOPES}
        for entry in entries:
            by_scope[entry.scope] += 1
        oldest = max((now - e.opened_at for e in entries), default=0.0)
        return {
            "role": self.role,
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "open_sessions": len(entries),
            "by_scope": by_scope,
            "oldest_age_s": round(oldest, 3),
            "checked_out": checked_out,
            "pools": self.pool_figures(),
            "reaped_total": self.reaped_total,
            "leaked_total": self.leaked_total,
            "sessions": [e.describe(now) for e in entries],
        }

    def after_fork(self) -> None:
        """In a forked child the parent's sessions and connections are not ours."""
        self._lock = threading.RLock()
        self._sessions.clear()
        self._checkouts.clear()
        self._local = threading.local()


SESSION_MANAGER = SessionManager()


def managed_session(engine: Engine, *, scope: str = "thread", owner: str = "",
                    commit: bool = True):
    """Module-level shortcut for ``SESSION_MANAGER.managed_session``."""
    return SESSION_MANAGER.managed_session(engine, scope=scope, owner=owner, commit=commit)


def with_managed_session(engine_getter: Callable[[], Engine], *, scope: str = "thread"):
    """Decorator: inject ``session=`` unless the caller passed one; commit, roll back, close."""

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("session") is not None:
                return func(*args, **kwargs)
            with managed_session(engine_getter(), scope=scope, owner=func.__qualname__) as s:
                kwargs["session"] = s
                return func(*args, **kwargs)
        return wrapper

    return decorator


def get_session_stats() -> dict[str, Any]:
    """This process's session and pool figures."""
    return SESSION_MANAGER.stats()


def reap_stale(max_age: float) -> dict[str, Any]:
    """Reap this process's registry (see ``SessionManager.reap_stale``)."""
    return SESSION_MANAGER.reap_stale(max_age)
