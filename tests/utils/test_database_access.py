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
    install_engine_events,
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
    assert options["pool_pre_ping"] is False  # idle connections are pinged instead
    assert options["pool_timeout"] <= 5
    assert engine_options(settings(DATABASE_URL="postgresql://h/db", DB_PING_IDLE_SECONDS=0),
                          "web")["pool_pre_ping"] is True


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


def test_sqlite_busy_timeout_follows_the_setting(tmp_path):
    engine = build_engine(f"sqlite:///{tmp_path / 'p.db'}", engine_options(
        settings(DATABASE_URL="sqlite:///x", SQLITE_BUSY_TIMEOUT_MS=1234), "cli"))
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1234
    finally:
        engine.dispose()


def _terminate(admin: sa.Engine, pid: int) -> None:
    with admin.connect() as connection:
        assert connection.scalar(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        connection.commit()


def test_only_idle_connections_are_pinged(app, engine, postgres_only):
    """A connection back in the pool for less than DB_PING_IDLE_SECONDS is used without a
    ping (no round trip); one idle longer is pinged and replaced if its server went away."""
    import time

    from tests.conftest import PG_URL

    test_engine = sa.create_engine(normalize_database_url(PG_URL), pool_size=1,
                                   max_overflow=0, pool_pre_ping=False)
    install_engine_events(test_engine, ping_idle_seconds=0.3)
    try:
        with test_engine.connect() as connection:
            first = connection.scalar(sa.text("SELECT pg_backend_pid()"))
        _terminate(engine, first)
        with pytest.raises(sa.exc.OperationalError):  # reused at once: no ping, the error
            with test_engine.connect() as connection:
                connection.scalar(sa.text("SELECT 1"))
        with test_engine.connect() as connection:
            second = connection.scalar(sa.text("SELECT pg_backend_pid()"))
        _terminate(engine, second)
        time.sleep(0.5)  # now idle longer than 0.3 s: pinged, replaced, the query works
        with test_engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT pg_backend_pid()")) not in (first, second)
    finally:
        test_engine.dispose()


def test_a_read_survives_a_connection_lost_since_its_last_use(app, client, engine,
                                                              committed, postgres_only):
    """GET re-runs once on a fresh connection when its pooled one died (no ping first)."""
    from tests.routes.api_support import user_with_token

    if app.config.get("DB_POOLER"):
        pytest.skip("behind PgBouncer the web role keeps no pooled connection")
    _user, headers = user_with_token(committed)
    assert client.get("/api/v1/batches", headers=headers).status_code == 200
    from tests.conftest import PG_URL

    admin = sa.create_engine(normalize_database_url(PG_URL), poolclass=sa.pool.NullPool)
    with admin.connect() as connection:
        pids = connection.scalars(sa.text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND application_name = 'rivalscope-web'")).all()
        for pid in pids:
            connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        connection.commit()
    admin.dispose()
    assert pids
    response = client.get("/api/v1/batches", headers=headers)
    assert response.status_code == 200, response.get_json()


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


def test_autocommit_until_checkin_only_lasts_one_checkout(app, postgres_only):
    """The flag is set for one checkout (also right after an idle ping, which leaves the
    connection idle) and put back on checkin; a connection the engine itself keeps in
    autocommit (the background engines) is left in autocommit."""
    import time

    from tests.conftest import PG_URL
    from utils.database_access import autocommit_until_checkin

    plain = sa.create_engine(normalize_database_url(PG_URL), pool_size=1, max_overflow=0)
    always = sa.create_engine(normalize_database_url(PG_URL), pool_size=1, max_overflow=0,
                              isolation_level="AUTOCOMMIT")
    for engine in (plain, always):
        install_engine_events(engine, ping_idle_seconds=0.2)
    try:
        with plain.connect() as connection:
            connection.scalar(sa.text("SELECT 1"))
        time.sleep(0.3)  # idle longer than 0.2 s: the next checkout pings
        with plain.connect() as connection:
            dbapi_connection = connection.connection.dbapi_connection
            assert dbapi_connection.info.transaction_status == 0  # the ping left it idle
            assert autocommit_until_checkin(connection)
            connection.scalar(sa.text("SELECT 1"))
            assert dbapi_connection.info.transaction_status == 0  # no BEGIN was sent
        with plain.connect() as connection:
            assert connection.connection.dbapi_connection.autocommit is False
            connection.scalar(sa.text("SELECT 1"))
            assert connection.connection.dbapi_connection.info.transaction_status != 0
            assert not autocommit_until_checkin(connection)  # inside a transaction: as is
        with always.connect() as connection:
            assert autocommit_until_checkin(connection)
        with always.connect() as connection:
            assert connection.connection.dbapi_connection.autocommit is True
    finally:
        plain.dispose()
        always.dispose()
