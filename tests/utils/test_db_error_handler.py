"""Error classification on errors provoked for real, and retrying units of work."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import QueuePool

from models import User
from utils.db_error_handler import (
    ERROR_STATS,
    classify,
    get_error_stats,
    record_error,
    with_db_error_handling,
)
from utils.db_session_manager import managed_session


def provoke(engine, statement: str, params=None) -> sa.exc.SQLAlchemyError:
    with pytest.raises(sa.exc.SQLAlchemyError) as caught, engine.connect() as connection:
        connection.execute(sa.text(statement), params or {})
    return caught.value


def test_unique_violation_is_integrity_with_constraint(engine, committed):
    committed.add(User(email="dup@example.test", password_hash="x"))
    committed.commit()
    with pytest.raises(sa.exc.IntegrityError) as caught, managed_session(engine) as session:
        session.add(User(email="dup@example.test", password_hash="y"))
        session.flush()
    info = record_error(caught.value, "test")
    assert info.category == "integrity"
    assert info.constraint in ("uq_users_email", "users.email")
    assert get_error_stats()["counts"] == {"integrity": 1}


def test_bad_value_is_data(engine, postgres_only):
    error = provoke(engine, "SELECT CAST(:v AS integer)", {"v": "not a number"})
    assert classify(error).category == "data"


def test_unknown_table_is_programming(engine):
    error = provoke(engine, "SELECT * FROM no_such_table")
    info = classify(error)
    assert info.category == "programming"
    assert "no_such_table" not in info.message  # details are never shown to users


def test_deadlock_is_retryable(engine, committed, postgres_only):
    committed.add_all([User(email="a@example.test", password_hash="x"),
                       User(email="b@example.test", password_hash="x")])
    committed.commit()
    barrier = threading.Barrier(2, timeout=10)
    errors: list[BaseException] = []

    def lock(first: str, second: str) -> None:
        try:
            with engine.begin() as connection:
                connection.execute(sa.text("SET LOCAL deadlock_timeout = '100ms'"))
                connection.execute(sa.text("UPDATE users SET failed_logins = 1 WHERE email = :e"),
                                   {"e": first})
                barrier.wait()
                connection.execute(sa.text("UPDATE users SET failed_logins = 2 WHERE email = :e"),
                                   {"e": second})
        except sa.exc.DBAPIError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=lock, args=("a@example.test", "b@example.test")),
               threading.Thread(target=lock, args=("b@example.test", "a@example.test"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(errors) == 1
    info = classify(errors[0])
    assert (info.category, info.sqlstate) == ("retryable", "40P01")


def test_serialization_failure_is_retryable(engine, committed, postgres_only):
    committed.add(User(email="s@example.test", password_hash="x"))
    committed.commit()
    first = engine.connect().execution_options(isolation_level="REPEATABLE READ")
    second = engine.connect().execution_options(isolation_level="REPEATABLE READ")
    try:
        t1, t2 = first.begin(), second.begin()
        first.execute(sa.text("SELECT failed_logins FROM users")).all()
        second.execute(sa.text("SELECT failed_logins FROM users")).all()
        first.execute(sa.text("UPDATE users SET failed_logins = 1"))
        t1.commit()
        with pytest.raises(sa.exc.OperationalError) as caught:
            second.execute(sa.text("UPDATE users SET failed_logins = 2"))
        t2.rollback()
    finally:
        first.close()
        second.close()
    info = classify(caught.value)
    assert (info.category, info.sqlstate) == ("retryable", "40001")


def test_terminated_backend_is_retryable(engine, postgres_only):
    with engine.connect() as victim:
        pid = victim.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        with engine.connect() as killer:
            killer.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        time.sleep(0.1)
        with pytest.raises(sa.exc.DBAPIError) as caught:
            victim.execute(sa.text("SELECT 1"))
    assert classify(caught.value).category == "retryable"


def test_pool_timeout_is_retryable(engine):
    small = sa.create_engine(engine.url, poolclass=QueuePool, pool_size=1, max_overflow=0,
                             pool_timeout=0.2)
    try:
        with small.connect(), pytest.raises(sa.exc.TimeoutError) as caught:
            small.connect()
    finally:
        small.dispose()
    assert classify(caught.value).category == "retryable"


def test_sqlite_lock_is_retryable(tmp_path):
    path = tmp_path / "locked.db"
    holder = sa.create_engine(f"sqlite:///{path}")
    waiter = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.1})
    try:
        with holder.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        with holder.connect() as connection:
            connection.exec_driver_sql("BEGIN EXCLUSIVE")
            with pytest.raises(sa.exc.OperationalError) as caught, waiter.begin() as other:
                other.exec_driver_sql("INSERT INTO t VALUES (1)")
            connection.exec_driver_sql("ROLLBACK")
    finally:
        holder.dispose()
        waiter.dispose()
    assert classify(caught.value).category == "retryable"


def test_with_db_error_handling_reruns_in_a_new_session(engine, committed, postgres_only):
    sessions = []

    @with_db_error_handling(lambda: engine, retries=2, backoff=0.01)
    def create_user(*, session):
        sessions.append(session)
        session.add(User(email=f"retry{len(sessions)}@example.test", password_hash="x"))
        session.flush()
        if len(sessions) == 1:
            pid = session.execute(sa.text("SELECT pg_backend_pid()")).scalar()
            with engine.connect() as killer:
                killer.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            time.sleep(0.1)
            session.execute(sa.text("SELECT 1"))
        return session.scalar(sa.select(sa.func.count()).select_from(User))

    assert create_user() == 1
    assert len(sessions) == 2 and sessions[0] is not sessions[1]
    stats = get_error_stats()
    assert stats["counts"] == {"retryable": 1}
    assert (stats["retries"], stats["recovered"]) == (1, 1)
    assert committed.scalars(sa.select(User.email)).all() == ["retry2@example.test"]


def test_non_retryable_errors_are_not_retried(engine, committed):
    calls = []

    @with_db_error_handling(lambda: engine, retries=3, backoff=0.01)
    def broken(*, session):
        calls.append(1)
        session.execute(sa.text("SELECT * FROM no_such_table"))

    with pytest.raises(sa.exc.SQLAlchemyError):
        broken()
    assert len(calls) == 1
    assert ERROR_STATS.snapshot()["counts"] == {"programming": 1}


def test_persistent_retryable_errors_raise_a_critical_alert(engine, caplog):
    small = sa.create_engine(engine.url, poolclass=QueuePool, pool_size=1, max_overflow=0,
                             pool_timeout=0.05)

    @with_db_error_handling(lambda: small, retries=1, backoff=0.01)
    def starved(*, session):
        session.execute(sa.text("SELECT 1"))

    try:
        with small.connect(), pytest.raises(sa.exc.TimeoutError):
            starved()
    finally:
        small.dispose()
    assert get_error_stats()["alerts"] == 1
    assert any(r.levelname == "CRITICAL" for r in caplog.records)
