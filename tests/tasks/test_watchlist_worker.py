"""Across processes: a real ``celery worker`` runs the dispatcher, the scheduled run's
pipeline and (through the dispatcher's sweep) the change detection of two runs."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from models import Batch, Change, WatchlistRun
from tests.factories import WatchlistFactory
from tests.sites import LocalSite, SiteSpec
from tests.tasks.test_worker_process import start_worker, stop_worker
from utils.operations.watchlists import RunOps

WAIT_S = 90


def wait_for(session, predicate, what: str):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        session.expire_all()
        value = predicate()
        session.commit()
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


def finished(session, batch_id: int) -> bool:
    return session.scalar(sa.select(Batch.status).where(Batch.id == batch_id)) == "completed"


@pytest.mark.timeout(240)
def test_worker_dispatches_runs_and_detects_changes(app, committed, test_settings):
    celery = app.extensions["celery"]
    with LocalSite(SiteSpec(title="Alpha", pages=2)) as alpha, \
            LocalSite(SiteSpec(title="Beta", pages=2)) as beta:
        watchlist = WatchlistFactory(urls=[alpha.url, beta.url], max_pages=5,
                                     next_due_at=datetime(2026, 1, 1, tzinfo=UTC))
        committed.commit()
        worker = start_worker(test_settings)
        try:
            celery.send_task("monitoring.dispatch_watchlists")
            first = wait_for(committed, lambda: committed.scalar(
                sa.select(WatchlistRun.batch_id).where(
                    WatchlistRun.watchlist_id == watchlist.id)), "the scheduled run")
            wait_for(committed, lambda: finished(committed, first), "the first run")
            alpha.spec.title = "Alpha, renamed"
            second = RunOps.run_now(committed, watchlist)
            committed.commit()
            celery.send_task("pipeline.start_batch", args=[second])
            wait_for(committed, lambda: finished(committed, second), "the second run")
            celery.send_task("monitoring.dispatch_watchlists")  # sweeps both detections
            wait_for(committed, lambda: committed.scalar(
                sa.select(sa.func.count()).select_from(WatchlistRun).where(
                    WatchlistRun.watchlist_id == watchlist.id,
                    WatchlistRun.changes_computed_at.is_not(None))) == 2, "detection")
        finally:
            output = stop_worker(worker)
        assert "Traceback" not in output, output
    changes = committed.execute(sa.select(Change.site_url, Change.kind, Change.before,
                                          Change.after)).all()
    # On this generated site the title also feeds h1, the description and the word count;
    # exact kinds are checked in test_watchlist_monitoring.py. Beta did not change.
    assert {url for url, _, _, _ in changes} == {alpha.url}
    assert ("Alpha", "Alpha, renamed") in {(b, a) for _, k, b, a in changes if k == "title"}
    assert committed.scalar(sa.select(sa.func.count()).select_from(WatchlistRun)) == 2
