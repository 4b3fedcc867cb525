"""Crash safety with real worker processes: SIGKILL mid-batch, a terminated connection,
a hostile site among normal ones. Nothing lost, nothing duplicated, nothing left running."""

from __future__ import annotations

import os
import signal
import time

import pytest
import sqlalchemy as sa

from models import Batch, Page, Site
from tasks.analysis_tasks import requeue_stalled_sites, start_batch
from tests.factories import UserFactory
from tests.processes import unexpected_tracebacks
from tests.sites import LocalSite, SiteSpec
from tests.tasks.test_worker_process import start_worker, stop_worker
from utils.db_operations import BatchOps

FAST_LEASE = {"SITE_LEASE_SECONDS": "3"}


def submit(session, urls: list[str], max_pages: int) -> int:
    user = UserFactory()
    batch = BatchOps.create(session, user.id, "crash test", urls, max_pages)
    session.commit()
    start_batch.delay(batch.id)  # after the commit, as the API does
    return batch.id


def wait_for(predicate, timeout: float, what: str, worker=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if worker is not None and worker.poll() is not None:
            pytest.fail(f"worker exited while waiting for {what}: {stop_worker(worker)}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def batch_status(session, batch_id: int) -> str:
    session.rollback()
    return session.scalar(sa.select(Batch.status).where(Batch.id == batch_id))


def page_count(session) -> int:
    session.rollback()
    return session.scalar(sa.select(sa.func.count()).select_from(Page))


def assert_no_duplicates_and_nothing_running(session) -> None:
    session.rollback()
    pairs = session.execute(sa.select(Page.site_id, Page.url)).all()
    assert len(pairs) == len(set(pairs))
    assert session.scalar(sa.select(sa.func.count()).where(Site.status == "running")) == 0


def test_sigkill_worker_mid_batch_then_new_worker_completes(app, committed, test_settings):
    specs = [SiteSpec(title=f"Slow {i}", pages=12, delay=0.1) for i in range(3)]
    sites = [LocalSite(spec) for spec in specs]
    for site in sites:
        site.__enter__()
    first = start_worker(test_settings, env=FAST_LEASE)
    second = None
    try:
        batch_id = submit(committed, [s.url for s in sites], max_pages=10)
        wait_for(lambda: page_count(committed) >= 4, 60, "pages to be stored", first)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        stored_at_kill = page_count(committed)
        assert batch_status(committed, batch_id) == "running"
        second = start_worker(test_settings, env=FAST_LEASE)
        time.sleep(3.5)  # let the dead worker's leases expire
        requeue_stalled_sites.apply()  # what beat runs every minute
        wait_for(lambda: batch_status(committed, batch_id) == "completed", 120,
                 "the batch to complete", second)
    finally:
        for process in (first, second):
            if process is not None:
                stop_worker(process)
        for site in sites:
            site.__exit__(None, None, None)
    assert_no_duplicates_and_nothing_running(committed)
    reports = committed.scalars(sa.select(Site.report)).all()
    assert [r["pages_crawled"] for r in reports] == [10, 10, 10]
    assert page_count(committed) >= stored_at_kill
    # Pages stored before the kill were not fetched again (each page served at most once,
    # except the pages in flight at the moment of the kill: the crawl's window, FETCH_PER_ORIGIN
    # + 1 = 2, per site).
    refetched = sum(max(0, n - 1) for spec in specs for path, n in spec.served.items()
                    if path.startswith("/p"))
    assert refetched <= 2 * len(specs)


def test_terminated_worker_connection_mid_task_recovers(app, committed, test_settings,
                                                        postgres_only):
    """A backend terminated while the worker is using it (waiting in an INSERT behind a
    lock the test holds): the unit of work re-runs on a new connection, nothing is lost."""
    with LocalSite(SiteSpec(pages=15, delay=0.1)) as site:
        worker = start_worker(test_settings)
        try:
            batch_id = submit(committed, [site.url], max_pages=12)
            wait_for(lambda: page_count(committed) >= 2, 60, "pages", worker)
            committed.rollback()
            committed.execute(sa.text("LOCK TABLE pages IN SHARE MODE"))  # inserts now wait
            busy: list = []
            deadline = time.monotonic() + 30
            while not busy and time.monotonic() < deadline:
                committed.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
                busy = committed.execute(sa.text(
                    "SELECT pid, state, wait_event_type FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND application_name = 'rivalscope-worker' AND state = 'active' "
                    "AND wait_event_type = 'Lock'")).all()
                time.sleep(0.05)
            assert busy, "no worker backend was caught in use: the drill proved nothing"
            killed = committed.execute(sa.text(
                "SELECT pg_terminate_backend(:pid)"), {"pid": busy[0].pid}).scalar()
            committed.commit()  # releases the lock
            assert killed
            wait_for(lambda: batch_status(committed, batch_id) == "completed", 90,
                     "the batch to complete", worker)
            assert worker.poll() is None, "the worker died"
        finally:
            output = stop_worker(worker)
    assert_no_duplicates_and_nothing_running(committed)
    stored = committed.scalar(sa.select(Site))
    assert stored.report["pages_crawled"] == 12 and stored.attempts == 1
    assert unexpected_tracebacks(output, allowed=("OperationalError",)) == []


def test_prefork_worker_child_completes_a_batch(app, committed, test_settings, postgres_only):
    """Fork safety for real: prefork children inherit the parent's engine and must not use
    its connections (the fork hook disposes them)."""
    with LocalSite(SiteSpec(pages=3)) as one, LocalSite(SiteSpec(pages=3)) as two:
        worker = start_worker(test_settings, None, "--pool", "prefork")
        try:
            batch_id = submit(committed, [one.url, two.url], max_pages=3)
            wait_for(lambda: batch_status(committed, batch_id) == "completed", 90,
                     "the batch to complete", worker)
        finally:
            output = stop_worker(worker)
    assert "ForkPoolWorker" in output
    assert_no_duplicates_and_nothing_running(committed)
    assert unexpected_tracebacks(output) == []


def test_hostile_site_among_normal_ones_gives_partial(app, committed, test_settings):
    with LocalSite(SiteSpec(pages=2)) as good1, LocalSite(SiteSpec(pages=2)) as good2, \
            LocalSite(SiteSpec(homepage_status=503)) as hostile:
        worker = start_worker(test_settings)
        try:
            batch_id = submit(committed, [good1.url, hostile.url, good2.url], max_pages=3)
            wait_for(lambda: batch_status(committed, batch_id) in ("partial", "failed",
                                                                     "completed"),
                     90, "the batch to finish", worker)
        finally:
            stop_worker(worker)
    assert batch_status(committed, batch_id) == "partial"
    rows = committed.execute(sa.select(Site.url, Site.status, Site.error)
                             .order_by(Site.position)).all()
    assert [r.status for r in rows] == ["completed", "failed", "completed"]
    assert "503" in rows[1].error
