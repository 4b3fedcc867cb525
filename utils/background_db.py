"""A tiny private engine for background infrastructure (log handler, snapshot publisher).

Its sessions and connections live in their own ``SessionManager``, so background writes
never take a slot in the application's pool, never count as application sessions, and a
sick database costs the application nothing. Statements run in AUTOCOMMIT (each write is
one statement), so a background writer is never left idle in a transaction.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from config import Config
from utils.database_access import backend_of, build_engine, engine_options
from utils.db_session_manager import SessionManager

_INSTANCES: weakref.WeakSet[BackgroundDatabase] = weakref.WeakSet()


def _config_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    base = {name: getattr(Config, name) for name in dir(Config) if name.isupper()}
    base.update({k: v for k, v in (settings or {}).items() if k.isupper()})
    return base


class BackgroundDatabase:
    """One small engine (1 connection, +1 overflow) with its own session registry."""

    def __init__(self, url: str, settings: Mapping[str, Any] | None = None,
                 role: str = "web") -> None:
        self.url = url
        self.role = role
        self.settings = _config_settings(settings)
        self.manager = SessionManager(role=role)
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        _INSTANCES.add(self)

    def engine(self) -> Engine:
        """The engine, built on first use."""
        with self._lock:
            if self._engine is None:
                self._engine = build_engine(self.url, self._options(), manager=self.manager)
            return self._engine

    def _options(self) -> dict[str, Any]:
        options = engine_options({**self.settings, "DATABASE_URL": self.url}, self.role)
        options["isolation_level"] = "AUTOCOMMIT"
        if "poolclass" not in options:  # NullPool behind a transaction pooler stays
            options.update(pool_size=1, max_overflow=1, pool_timeout=2.0)
        if backend_of(self.url) == "postgresql":
            options["connect_args"] = {**options["connect_args"],
                                       "connect_timeout": min(
                                           3, int(self.settings["DB_CONNECT_TIMEOUT"]))}
        return options

    @contextmanager
    def session(self, owner: str) -> Iterator[Session]:
        """A session on the private engine, always closed."""
        with self.manager.managed_session(self.engine(), scope="thread", owner=owner) as s:
            yield s

    def retarget(self, url: str) -> None:
        """Point at another database (the old engine is disposed)."""
        with self._lock:
            old, self._engine, self.url = self._engine, None, url
        if old is not None:
            old.dispose()

    def pool_figures(self) -> list[dict[str, Any]]:
        return self.manager.pool_figures()

    def dispose(self) -> None:
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self.manager.after_fork()


def _reinit_after_fork() -> None:
    for instance in list(_INSTANCES):
        instance._after_fork()


os.register_at_fork(after_in_child=_reinit_after_fork)
