"""Two dispatchers race on the same due watchlists: one run per (watchlist, slot), ever.

PostgreSQL: FOR UPDATE SKIP LOCKED for 200 rounds; SQLite: the single-writer claim for
fewer rounds (same assertions)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from models import Batch, WatchlistRun
from tasks.monitoring_tasks import dispatch_once
from tests.factories import UserFactory, WatchlistFactory
from utils.operations.watchlists import WatchlistOps

WATCHLISTS = 4


def _dispatcher(engine, barrier, rounds, base, results, errors):
    try:
        for round_no in range(rounds):
            now = base + timedelta(days=round_no, minutes=1)
            barrier.wait(timeout=30)
            with Session(bind=engine) as session:
                results.extend(dispatch_once(session, now)["runs"])
    except Exception as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)
        barrier.abort()


def test_two_dispatchers_never_double_a_slot(app, committed, engine, backend):
    """Each round both run the dispatcher task's unit of work at the same frozen minute."""
    rounds = 200 if backend == "postgresql" else 40
    base = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)
    user = UserFactory()
    for _ in range(WATCHLISTS):
        watchlist = WatchlistFactory(owner=user, schedule_hour=6, timezone="UTC")
        WatchlistOps.reschedule(watchlist, base - timedelta(minutes=1))
    committed.commit()
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[Exception] = []
    threads = [threading.Thread(target=_dispatcher,
                                args=(engine, barrier, rounds, base, results, errors))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    slots = Counter(committed.execute(sa.select(WatchlistRun.watchlist_id,
                                                WatchlistRun.scheduled_for)).all())
    assert len(slots) == WATCHLISTS * rounds and set(slots.values()) == {1}
    assert len(results) == len(set(results)) == WATCHLISTS * rounds
    assert committed.scalar(sa.select(sa.func.count()).select_from(Batch)) == len(results)
    assert committed.scalar(sa.select(sa.func.count()).select_from(WatchlistRun)
                            .where(WatchlistRun.batch_id.is_(None))) == 0
