"""Shared fixtures: one app per test session on the backend named by TEST_DATABASE_URL
(PostgreSQL) or a temporary SQLite file, the schema built by the real migrations, an
autouse leak guard, and per-test cleanup (rollback or truncation)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from app import create_app
from config import TestConfig
from models import db
from tests import factories
from tests.pgbouncer import PgBouncer, pgbouncer_fixture  # noqa: F401 - session fixture
from utils.database_access import normalize_database_url
from utils.db_error_handler import ERROR_STATS
from utils.db_log_handler import uninstall_db_log_handler
from utils.db_session_manager import SESSION_MANAGER

BASE_PG_URL = os.environ.get("TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
# Each test run gets its own PostgreSQL database and Celery queue, so runs never collide.
RUN_ID = f"run{os.getpid()}"
PG_URL = ""
if BASE_PG_URL:
    _base = sa.engine.make_url(normalize_database_url(BASE_PG_URL))
    PG_URL = _base.set(database=f"{_base.database}_{RUN_ID}").render_as_string(
        hide_password=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _admin_engine() -> sa.Engine:
    return sa.create_engine(normalize_database_url(BASE_PG_URL), poolclass=NullPool,
                            isolation_level="AUTOCOMMIT")


def create_run_database() -> None:
    """A fresh database for this run, next to the one TEST_DATABASE_URL names."""
    name = sa.engine.make_url(PG_URL).database
    engine = _admin_engine()
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


def drop_run_database() -> None:
    name = sa.engine.make_url(PG_URL).database
    engine = _admin_engine()
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session")
def test_settings(tmp_path_factory: pytest.TempPathFactory, pgbouncer: PgBouncer | None
                  ) -> dict:
    """Database URL, broker and folders for this test session."""
    base = tmp_path_factory.mktemp("rivalscope")
    url = PG_URL or f"sqlite:///{base / 'test.db'}"
    settings = {
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": REDIS_URL or "filesystem://",
        "BROKER_FOLDER": base / "broker",
        "WTF_CSRF_ENABLED": False,
        "SECRET_KEY": "test-secret",
        "FETCH_ALLOW_NETWORKS": "127.0.0.0/8,::1/128",
        "CELERY_TASK_DEFAULT_QUEUE": f"rivalscope-test-{RUN_ID}",
    }
    if pgbouncer is not None:  # TEST_PGBOUNCER=1: through PgBouncer in transaction mode
        settings.update(DATABASE_URL=pgbouncer.url_for(url), DB_POOLER="transaction")
    return settings


@pytest.fixture(scope="session")
def app(test_settings: dict) -> Iterator[Flask]:
    """The app, with the schema created by the migrations (so they are tested too)."""
    if PG_URL:
        create_run_database()
    application = create_app(TestConfig, role="web", **test_settings)
    with application.app_context():
        upgrade()
    yield application
    uninstall_db_log_handler()  # its background writer must not outlive the database
    with application.app_context():
        db.engine.dispose()
    if PG_URL:
        drop_run_database()


@pytest.fixture(scope="session")
def backend(app: Flask) -> str:
    with app.app_context():
        return db.engine.dialect.name


@pytest.fixture
def postgres_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("needs PostgreSQL (set TEST_DATABASE_URL)")


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


@pytest.fixture
def engine(app: Flask) -> sa.Engine:
    with app.app_context():
        return db.engine


@pytest.fixture
def db_session(engine: sa.Engine) -> Iterator[Session]:
    """A session inside one outer transaction that is rolled back after the test."""
    connection = engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    factories.bind_session(session)
    try:
        yield session
    finally:
        factories.bind_session(None)
        session.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def committed(app: Flask, engine: sa.Engine) -> Iterator[Session]:
    """For tests whose writes must be visible to other threads or processes: a session
    that commits for real; every table is emptied after the test."""
    session = Session(bind=engine, expire_on_commit=False)
    factories.bind_session(session)
    try:
        yield session
    finally:
        factories.bind_session(None)
        session.close()
        truncate_all(engine)
        drain_queue(app)  # messages naming rows that no longer exist


def drain_queue(app: Flask) -> list[tuple[str, list]]:
    """Take every message off this run's task queue: [(task name, args)]."""
    celery = app.extensions["celery"]
    queue = celery.conf.task_default_queue
    taken = []
    with celery.connection_for_write() as connection:
        channel = connection.default_channel
        channel.queue_declare(queue=queue, passive=False, durable=True, auto_delete=False)
        for _ in range(10_000):
            message = channel.basic_get(queue, no_ack=True)
            if message is None:
                break
            payload = message.decode()
            args = payload[0] if isinstance(payload, list | tuple) else payload.get("args")
            taken.append((message.headers.get("task"), list(args or [])))
    return taken


def truncate_all(engine: sa.Engine) -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                connection.execute(sa.text(f"DELETE FROM {name}"))


def idle_in_transaction(url: str) -> list[tuple]:
    """This application's backends left idle in a transaction (PostgreSQL)."""
    probe = sa.create_engine(normalize_database_url(url), poolclass=NullPool)
    try:
        with probe.connect() as connection:
            return connection.execute(sa.text(
                "SELECT pid, application_name, left(query, 120) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND application_name LIKE 'rivalscope-%' "
                "AND state LIKE 'idle in transaction%'")).all()
    finally:
        probe.dispose()


@pytest.fixture(autouse=True)
def leak_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail any test that leaves a session open, a connection checked out, sends a network
    request while one of its thread's sessions is in a transaction, or (PostgreSQL) leaves a
    backend idle in a transaction."""
    ERROR_STATS.reset()
    SESSION_MANAGER.take_network_violations()
    if "app" in request.fixturenames:
        # A test that built another app (a dead broker, other limits) made its Celery app
        # the current one; every test starts with the session app's again.
        celery = request.getfixturevalue("app").extensions["celery"]
        celery.set_current()
        celery.set_default()
    yield
    problems = []
    sessions = SESSION_MANAGER.open_sessions()
    if sessions:
        problems.append(f"open sessions: {sessions}")
    violations = SESSION_MANAGER.take_network_violations()
    if violations:
        problems.append(f"network requests while a transaction was open: {violations}")
    if SESSION_MANAGER.checked_out():
        problems.append(f"{SESSION_MANAGER.checked_out()} connection(s) still checked out")
    uses_database = "app" in request.fixturenames
    if PG_URL and uses_database and "no_pg_guard" not in request.keywords:
        idle = idle_in_transaction(PG_URL)
        if idle:
            problems.append(f"idle in transaction backends: {idle}")
    if problems:
        SESSION_MANAGER.after_fork()  # reset so one leak does not fail every later test
        pytest.fail("leak guard: " + "; ".join(problems), pytrace=False)


@pytest.fixture
def output_dir() -> Path:
    """Where tests save artefacts (screenshots...)."""
    path = Path(os.environ.get("TEST_OUTPUT_DIR", Path(__file__).parent.parent / "test-output"))
    path.mkdir(parents=True, exist_ok=True)
    return path
