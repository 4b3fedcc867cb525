"""Thread scope: sessions never cross threads; reap_stale closes what dead threads left."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from utils.database_access import build_engine
from utils.db_session_manager import SESSION_MANAGER, managed_session, with_managed_session


@pytest.fixture
def wide_engine(engine):
    """The app's engine settings with room for 16 simultaneous connections."""
    wide = build_engine(engine.url.render_as_string(hide_password=False),
                        {"pool_size": 16, "max_overflow": 0, "pool_timeout": 10})
    yield wide
    wide.dispose()


def test_sixteen_threads_get_their_own_sessions(wide_engine):
    engine = wide_engine
    barrier = threading.Barrier(16, timeout=30)
    seen: dict[int, tuple[int, int]] = {}
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            with managed_session(engine, scope="thread", owner=f"t{index}") as session:
                session.execute(sa.text("SELECT 1"))
                seen[index] = (id(session), threading.get_ident())
                barrier.wait()  # all 16 sessions are open at once here
                session.execute(sa.text("SELECT 1"))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert len({session_id for session_id, _ in seen.values()}) == 16
    assert SESSION_MANAGER.open_sessions() == []


def test_closing_one_session_affects_no_other(engine):
    opened = threading.Event()
    closed_first = threading.Event()
    results: dict[str, object] = {}

    def first() -> None:
        with managed_session(engine, owner="first") as session:
            session.execute(sa.text("SELECT 1"))
            opened.wait(10)
        closed_first.set()

    def second() -> None:
        with managed_session(engine, owner="second") as session:
            session.execute(sa.text("SELECT 1"))
            opened.set()
            closed_first.wait(10)
            results["after"] = session.execute(sa.text("SELECT 2")).scalar()
            results["open"] = [s["owner"] for s in SESSION_MANAGER.open_sessions()]

    threads = [threading.Thread(target=second), threading.Thread(target=first)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == {"after": 2, "open": ["second"]}


def test_reap_stale_closes_sessions_of_dead_threads(engine):
    def leaky() -> None:
        session = sa.orm.Session(bind=engine)
        SESSION_MANAGER.register(session, scope="thread", owner="leaky")
        session.execute(sa.text("SELECT 1"))  # holds a connection
        leaky.session = session  # keep it alive after the thread ends

    thread = threading.Thread(target=leaky, name="leaky-thread")
    thread.start()
    thread.join()
    assert SESSION_MANAGER.checked_out() == 1
    before = SESSION_MANAGER.reaped_total
    report = SESSION_MANAGER.reap_stale(max_age=3600)
    assert [r["owner"] for r in report["reaped"]] == ["leaky"]
    assert SESSION_MANAGER.reaped_total == before + 1
    assert SESSION_MANAGER.open_sessions() == []
    assert SESSION_MANAGER.checked_out() == 0


def test_reap_stale_reports_but_keeps_live_old_sessions(engine):
    with managed_session(engine, owner="long") as session:
        session.execute(sa.text("SELECT 1"))
        report = SESSION_MANAGER.reap_stale(max_age=0)
        assert report["reaped"] == []
        assert report["stale"][0]["owner"] == "long"
        assert "test_session_manager" in report["stale"][0]["opened_where"]
        assert session.execute(sa.text("SELECT 3")).scalar() == 3


def test_with_managed_session_injects_only_when_missing(engine):
    @with_managed_session(lambda: engine)
    def count(*, session):
        return session, session.execute(sa.text("SELECT 1")).scalar()

    injected, value = count()
    assert value == 1
    with managed_session(engine) as mine:
        passed, _ = count(session=mine)
        assert passed is mine
    assert injected is not mine


def test_stats_count_by_scope(engine):
    with managed_session(engine, scope="task", owner="t"):
        stats = SESSION_MANAGER.stats()
        assert stats["by_scope"]["task"] == 1
        assert stats["open_sessions"] == 1
    assert SESSION_MANAGER.stats()["open_sessions"] == 0


def test_reap_is_not_fooled_by_a_new_thread_reusing_the_dead_threads_id(engine):
    """Python hands a dead thread's ident to the next thread; the reap must still see the
    owner as dead."""
    holder: dict[str, object] = {}

    def leaky() -> None:
        session = sa.orm.Session(bind=engine)
        SESSION_MANAGER.register(session, scope="thread", owner="leaky")
        session.execute(sa.text("SELECT 1"))
        holder["session"] = session
        holder["ident"] = threading.get_ident()

    thread = threading.Thread(target=leaky)
    thread.start()
    thread.join()
    stop = threading.Event()
    reused = threading.Event()
    survivors = []
    for _ in range(20):  # start live threads until one gets the dead thread's ident
        survivor = threading.Thread(
            target=lambda: (threading.get_ident() == holder["ident"] and reused.set(),
                            stop.wait(30)))
        survivor.start()
        survivors.append(survivor)
        if reused.wait(0.05):
            break
    try:
        assert reused.is_set(), "no thread reused the ident; the test proves nothing"
        report = SESSION_MANAGER.reap_stale(max_age=3600)
    finally:
        stop.set()
        for survivor in survivors:
            survivor.join(10)
    assert [r["owner"] for r in report["reaped"]] == ["leaky"]
    assert SESSION_MANAGER.checked_out() == 0
