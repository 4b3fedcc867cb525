"""Fair dispatch: one user's flood never holds another user's batch back. Celery's queue
is FIFO, so fairness is decided in the database: each message starts the pending site that
is next in round-robin order across users."""

from __future__ import annotations

import time

import sqlalchemy as sa

from models import Batch, Site
from models.base import utcnow
from tasks.analysis_tasks import start_batch
from tests.factories import UserFactory
from tests.sites import LocalSite, SiteSpec
from tests.tasks.test_crash_safety import batch_status, wait_for
from tests.tasks.test_worker_process import start_worker, stop_worker
from utils.db_operations import BatchOps

FLOOD_BATCHES = 3
FLOOD_SITES = 50


def test_second_users_batch_starts_within_one_slot_of_a_flood(app, committed, test_settings):
    flood_sites = [LocalSite(SiteSpec(pages=3, delay=0.3)) for _ in range(FLOOD_BATCHES)]
    for site in flood_sites:
        site.__enter__()
    worker = start_worker(test_settings)
    try:
        flooder, newcomer = UserFactory(), UserFactory()
        committed.commit()
        flood_ids = []
        for number, site in enumerate(flood_sites):
            urls = [f"{site.url}?copy={i}" for i in range(FLOOD_SITES)]
            batch = BatchOps.create(committed, flooder.id, f"flood {number}", urls, 5)
            committed.commit()
            start_batch.delay(batch.id)
            flood_ids.append(batch.id)

        def running_sites() -> int:
            committed.rollback()
            return committed.scalar(sa.select(sa.func.count()).where(Site.status == "running"))

        wait_for(lambda: running_sites() >= 2, 60, "the flood to occupy the worker", worker)
        with LocalSite(SiteSpec(pages=0)) as small:
            submitted_at = utcnow()
            started = time.monotonic()
            batch = BatchOps.create(committed, newcomer.id, "one page", [small.url], 1)
            committed.commit()
            start_batch.delay(batch.id)
            wait_for(lambda: batch_status(committed, batch.id) == "completed", 90,
                     "the newcomer's batch to complete", worker)
            waited = time.monotonic() - started
        newcomer_started = committed.scalar(sa.select(Site.started_at)
                                            .where(Site.batch_id == batch.id))
        overtaking = committed.scalar(sa.select(sa.func.count()).select_from(Site)
                                      .join(Batch).where(Batch.user_id == flooder.id,
                                                         Site.started_at > submitted_at,
                                                         Site.started_at < newcomer_started))
        flood_pending = committed.scalar(sa.select(sa.func.count()).select_from(Site).join(
            Batch).where(Batch.user_id == flooder.id, Site.status == "pending"))
        print(f"newcomer completed after {waited:.1f} s; {overtaking} flood sites started "
              f"first; {flood_pending} flood sites still pending")
        # The flood's backlog was still there, yet at most one slot went to it first.
        assert flood_pending > FLOOD_BATCHES * FLOOD_SITES / 2
        assert overtaking <= 1
        for batch_id in flood_ids:
            BatchOps.cancel(committed, committed.get(Batch, batch_id))
        committed.commit()
    finally:
        stop_worker(worker)
        for site in flood_sites:
            site.__exit__(None, None, None)
