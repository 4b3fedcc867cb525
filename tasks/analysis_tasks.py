"""The pipeline: start a batch, analyse each site under a lease, finish in the database.

Tasks take ids, are enqueued after the commit that created their rows, and own one
thread-scoped session (``self.session``). Each page is stored as soon as it is analysed, so
a redelivered task resumes where the last one stopped and never repeats a page.
"""

from __future__ import annotations

import logging
import random
import uuid
from datetime import timedelta
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from analysis.comparison import compare
from analysis.crawler import SiteFailed, crawl_site
from analysis.report import build_report
from analysis.scoring import score_report
from tasks.crawl_tools import crawl_tools_for
from utils.db_error_handler import record_error
from utils.db_operations import BatchOps, EventOps, LeaseNotHeld, PageOps, SiteOps

log = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 60.0
CANCEL_CHECK_EVERY = 5
# Events worth a line in the timeline; "page_fetched" is summarised, not logged per page.
EVENT_MESSAGES = {
    "robots_blocked": "Blocked by robots.txt: {url}",
    "fetch_failed": "Fetch failed: {url} ({reason})",
}


class LeaseLost(Exception):
    """Another worker took the site (our lease expired); stop without writing."""


def retry_delay(retries: int) -> float:
    """Exponential backoff with full jitter."""
    return random.uniform(0, min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** retries))


def retry_on_database_error(task: Any, error: SQLAlchemyError) -> None:
    """Re-raise as a Celery retry when the error is retryable; else re-raise it."""
    info = record_error(error, task.name)
    try:
        task.session.rollback()
    except SQLAlchemyError:
        pass
    if info.retryable:
        raise task.retry(exc=error, countdown=retry_delay(task.request.retries))
    raise error


@shared_task(name="pipeline.start_batch", bind=True, max_retries=8)
def start_batch(self, batch_id: int) -> int:
    """Mark the batch running and enqueue one ``analyze_site`` per pending site."""
    try:
        site_ids = BatchOps.mark_started(self.session, batch_id)
        if site_ids:
            EventOps.add(self.session, batch_id, "batch_started",
                         f"Analysis started for {len(site_ids)} sites")
        self.session.commit()
    except SQLAlchemyError as error:
        retry_on_database_error(self, error)
    for site_id in site_ids:
        analyze_site.delay(site_id)
    return len(site_ids)


class SiteRun:
    """One run of ``analyze_site``: the crawl's callbacks write through the task session."""

    def __init__(self, task: Any, site_id: int, owner: str) -> None:
        self.task = task
        self.session = task.session
        self.site_id = site_id
        self.owner = owner
        self.config = current_app.config
        self.site = SiteOps.get(self.session, site_id)
        self.batch_id = self.site.batch_id
        self.seq = 0
        self.calls = 0
        self.pages = 0

    def keep_lease(self) -> None:
        """Renew the lease, or stop: the site was cancelled, deleted or taken over."""
        if not SiteOps.renew_lease(self.session, self.site_id, self.owner,
                                   self.config["SITE_LEASE_SECONDS"]):
            self.session.rollback()
            raise LeaseLost(self.site_id)

    def store(self, record: dict) -> None:
        self.keep_lease()
        PageOps.store(self.session, self.site_id, record, self.seq)
        self.seq += 1
        if record.get("analysed"):
            self.pages += 1
            if self.pages % 10 == 0:
                self.event("pages_fetched", f"{self.pages} pages analysed on {self.site.url}")
        self.session.commit()

    def on_event(self, kind: str, data: dict) -> None:
        template = EVENT_MESSAGES.get(kind)
        if template:
            self.event(kind, template.format(url=data.get("url", ""),
                                             reason=data.get("reason", data.get("error", ""))),
                       data)

    def should_stop(self) -> bool:
        self.calls += 1
        if self.calls % CANCEL_CHECK_EVERY:
            return False
        return SiteOps.is_cancelled(self.session, self.site_id)

    def event(self, kind: str, message: str, data: dict | None = None) -> None:
        EventOps.add(self.session, self.batch_id, kind, message, data, site_id=self.site_id)

    def finish(self, status: str, *, report: dict | None = None, scores: dict | None = None,
               error: str | None = None) -> str | None:
        """Record the outcome (event first, so the timeline ends with the batch's)."""
        self.keep_lease()
        if status == "completed":
            self.event("site_completed", f"Analysed {self.site.url}: {self.pages} pages",
                       {"pages": self.pages})
        else:
            self.event("site_failed", f"Failed {self.site.url}: {error}", {"reason": error})
        try:
            batch_status = SiteOps.finish(self.session, self.site_id, self.owner,
                                          status=status, compare=compare, report=report,
                                          scores=scores, error=error)
        except LeaseNotHeld:
            self.session.rollback()
            raise LeaseLost(self.site_id) from None
        self.session.commit()
        return batch_status


@shared_task(name="pipeline.analyze_site", bind=True, max_retries=8)
def analyze_site(self, site_id: int) -> str:
    """Crawl and analyse one site under a lease; finish it (and maybe its batch)."""
    owner = self.request.id or f"eager-{uuid.uuid4()}"
    lease = current_app.config["SITE_LEASE_SECONDS"]
    try:
        if not SiteOps.acquire_lease(self.session, site_id, owner, lease):
            self.session.commit()
            return "not leased"
        run = SiteRun(self, site_id, owner)
        done = PageOps.records(self.session, site_id)
        run.seq = len(done)
        run.pages = sum(1 for record in done if record.get("analysed"))
        run.event("site_resumed" if done else "site_started",
                  f"{'Resuming' if done else 'Started'} {run.site.url}"
                  + (f" after {len(done)} stored pages" if done else ""))
        self.session.commit()
        tools = crawl_tools_for(self.app)
        try:
            result = crawl_site(run.site.url, max_pages=run.site.batch.max_pages,
                                fetcher=tools.fetcher, politeness=tools.politeness, done=done,
                                on_record=run.store, should_stop=run.should_stop,
                                on_event=run.on_event)
        except SiteFailed as failure:
            run.finish("failed", error=failure.reason)
            return "failed"
        except SoftTimeLimitExceeded:
            self.session.rollback()
            run.finish("failed", error="time limit exceeded while crawling")
            return "failed"
        if result.stopped:
            self.session.commit()
            return "stopped"
        report = build_report(result.records, result.robots, result.sitemap)
        run.finish("completed", report=report, scores=score_report(report))
        return "completed"
    except LeaseLost:
        return "lease lost"
    except SQLAlchemyError as error:
        retry_on_database_error(self, error)
    except Exception as error:  # noqa: BLE001 - one bad site never breaks the batch
        log.exception("analysis of site %s failed", site_id)
        self.session.rollback()
        if SiteOps.get(self.session, site_id) is None:
            return "site deleted"
        try:
            SiteRun(self, site_id, owner).finish(
                "failed", error=f"internal error: {type(error).__name__}: {error}"[:500])
        except LeaseLost:
            return "lease lost"
        return "failed"
    return "retrying"


@shared_task(name="pipeline.requeue_stalled_sites", bind=True)
def requeue_stalled_sites(self) -> dict:
    """Re-enqueue sites whose lease expired or whose message was lost; restart lost batches."""
    lease = current_app.config["SITE_LEASE_SECONDS"]
    expired = SiteOps.expired_leases(self.session)
    pending = SiteOps.pending_in_running_batches(self.session, timedelta(seconds=lease))
    batches = BatchOps.stalled_pending(self.session, timedelta(seconds=60))
    self.session.commit()
    for site_id in expired + pending:
        analyze_site.delay(site_id)
    for batch_id in batches:
        start_batch.delay(batch_id)
    return {"expired": expired, "pending": pending, "batches": batches}
