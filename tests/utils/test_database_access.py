"""Engines per backend, URL normalisation and fork safety, on the real database."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from config import TestConfig
from utils.database_access import (
    build_engine,
    engine_options,
    get_sync_session,
    normalize_database_url,
)
from utils.db_session_manager import SESSION_MANAGER


@pytest.mark.parametrize("raw", ["postgres://u:p@h/db", "postgresql://u:p@h/db"])
def test_postgres_urls_are_normalised_to_psycopg2(raw):
    assert normalize_database_url(raw) == "postgresql+psycopg2://u:p@h/db"


def test_other_urls_are_left_alone():
    assert normalize_database_url("sqlite:///x.db") == "sqlite:///x.db"


def settings(**overrides):
    values = {k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()}
    values.update(overrides)
    return values


def test_pooler_mode_has_no_startup_options_and_no_pool():
    options = engine_options(settings(DATABASE_URL="postgresql://h/db",
                                      DB_POOLER="transaction"), "worker")
    assert "options" not in options["connect_args"]
    assert options["poolclass"].__name__ == "NullPool"
    assert options["connect_args"]["application_name"] == "rivalscope-worker"


def test_direct_mode_sets_timeouts_and_small_pool():
    options = engine_options(settings(DATABASE_URL="postgresql://h/db"), "web")
    assert "statement_timeout" in options["connect_args"]["options"]
    assert options["pool_pre_ping"] is True
    assert options["pool_timeout"] <= 5


def test_sqlite_pragmas_on_every_connection(tmp_path):
    engine = build_engine(f"sqlite:///{tmp_path / 'p.db'}",
                          engine_options(settings(DATABASE_URL="sqlite:///x"), "cli"))
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    finally:
        engine.dispose()


def test_application_name_names_the_role(engine, postgres_only):
    with engine.connect() as connection:
        name = connection.execute(sa.text("SHOW application_name")).scalar()
    assert name == "rivalscope-web"


def backend_identity(connection) -> str:
    if connection.dialect.name == "postgresql":
        return str(connection.execute(sa.text("SELECT pg_backend_pid()")).scalar())
    return str(id(connection.connection.dbapi_connection))


def test_forked_child_gets_fresh_connections(engine):
    """The child never reuses the parent's pooled sockets, and does not close them."""
    with engine.connect() as connection:
        pooled_identity = backend_identity(connection)  # now idle in the parent's pool
    held = engine.connect()  # checked out across the fork
    held_identity = backend_identity(held)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
                os.write(write_fd, backend_identity(connection).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    _, status = os.waitpid(pid, 0)
    child_identity = os.read(read_fd, 200).decode()
    os.close(read_fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert child_identity not in (pooled_identity, held_identity)
    try:
        assert held.execute(sa.text("SELECT 1")).scalar() == 1
        assert backend_identity(held) == held_identity
    finally:
        held.close()


def test_checkout_refuses_connection_from_another_pid(app, engine):
    with engine.connect() as connection:
        record = connection.connection._connection_record
        first = backend_identity(connection)
    record.info["pid"] = -1  # as if inherited from another process
    with engine.connect() as connection:
        second = backend_identity(connection)
        assert connection.connection._connection_record.info["pid"] == os.getpid()
    # Behind a transaction pooler the pooler may hand back the same server backend.
    if engine.dialect.name == "postgresql" and app.config["DB_POOLER"] != "transaction":
        assert first != second


def test_get_sync_session_commits_and_closes(engine, committed):
    from models import User

    with get_sync_session(engine, scope="cli", owner="test") as session:
        session.add(User(email="sync@example.test", password_hash="x"))
        assert SESSION_MANAGER.open_sessions()[0]["scope"] == "cli"
    assert SESSION_MANAGER.open_sessions() == []
    assert committed.scalar(sa.select(User.email)) == "sync@example.test"


def test_get_sync_session_rolls_back_on_error(engine, committed):
    from models import User

    with pytest.raises(RuntimeError), get_sync_session(engine) as session:
        session.add(User(email="gone@example.test", password_hash="x"))
        session.flush()
        raise RuntimeError("boom")
    assert committed.scalar(sa.select(sa.func.count()).select_from(User)) == 0
