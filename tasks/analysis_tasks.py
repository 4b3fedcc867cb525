"""The pipeline: start a batch, analyse each site under a lease, finish in the database.

Tasks take ids, are enqueued after the commit that created their rows, and own one
thread-scoped session (``self.session``). Each page is stored as soon as it is analysed, so
a redelivered task resumes where the last one stopped and never repeats a page.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, TypeVar

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from flask import current_app
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from analysis.comparison import compare
from analysis.crawler import SiteFailed, crawl_site
from analysis.report import build_report
from analysis.scoring import score_report
from tasks.crawl_tools import crawl_tools_for
from tasks.task_retry import retry_delay, retry_on_database_error
from utils.alerts import send_alert
from utils.db_error_handler import record_error, run_with_retries
from utils.db_operations import BatchOps, EventOps, LeaseNotHeld, PageOps, SiteOps
from utils.operations.batches import START_WINDOW

log = logging.getLogger(__name__)

CANCEL_CHECK_SECONDS = 1.0  # the crawl asks "cancelled?" at most this often (each page's
# write refuses a cancelled site anyway: its lease check fails)
RENEW_AFTER_FRACTION = 0.25  # renew the lease once this fraction of it has passed
UNIT_RETRIES = 4  # a callback's transaction re-runs this often on retryable errors
UNIT_BACKOFF_SECONDS = 0.5
T = TypeVar("T")
# Events worth a line in the timeline; "page_fetched" is summarised, not logged per page.
EVENT_MESSAGES = {
    "robots_blocked": "Blocked by robots.txt: {url}",
    "fetch_failed": "Fetch failed: {url} ({reason})",
}


class LeaseLost(Exception):
    """Another worker took the site (our lease expired); stop without writing."""


@shared_task(name="pipeline.start_batch", bind=True, max_retries=8)
def start_batch(self, batch_id: int) -> int:
    """Mark the batch running and enqueue one ``analyze_site`` per pending site."""
    try:
        site_ids = BatchOps.mark_started(self.session, batch_id,
                                         current_app.config["SITE_LEASE_SECONDS"])
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
    """One run of ``analyze_site``. The crawl's callbacks each do their database work in one
    short transaction that has ended (committed or rolled back) before control returns to
    the crawler, so no transaction is ever open while the crawler waits on the network.
    Everything the crawl needs is read before it starts; nothing is lazy-loaded later."""

    def __init__(self, task: Any, site_id: int, owner: str, inputs: SimpleNamespace) -> None:
        self.task = task
        self.session = task.session
        self.site_id = site_id
        self.owner = owner
        self.url: str = inputs.url
        self.batch_id: int = inputs.batch_id
        self.max_pages: int = inputs.max_pages
        self.http_fallback: bool = bool(getattr(inputs, "scheme_guessed", False))
        self.lease_seconds: int = current_app.config["SITE_LEASE_SECONDS"]
        self.seq = 0
        self.pages = 0
        self.renewed_at = self.checked_at = time.monotonic()  # the lease was just taken

    def unit(self, work: Callable[[], T]) -> T:
        """Run ``work`` as one transaction: commit, or roll back and re-raise. Retryable
        database errors (a restarted server, a lock timeout) re-run it after a backoff."""

        def transaction() -> T:
            try:
                result = work()
                self.session.commit()
                return result
            except BaseException:
                self.session.rollback()
                raise

        return run_with_retries(transaction, operation="pipeline.analyze_site",
                                retries=UNIT_RETRIES, backoff=UNIT_BACKOFF_SECONDS,
                                max_backoff=8 * UNIT_BACKOFF_SECONDS)

    def keep_lease(self) -> None:
        """Renew the lease, or stop: the site was cancelled, deleted or taken over."""
        if not SiteOps.renew_lease(self.session, self.site_id, self.owner, self.lease_seconds):
            raise LeaseLost(self.site_id)

    def store(self, record: dict) -> None:
        """Store a page in one transaction that also checks the lease (one statement,
        ``PageOps.store_leased``), so a late writer stores nothing; the lease itself is
        renewed only once ``RENEW_AFTER_FRACTION`` of it has passed, not per page."""
        started = time.monotonic()
        renew = started - self.renewed_at >= self.lease_seconds * RENEW_AFTER_FRACTION

        def write() -> None:
            if renew:
                self.keep_lease()
            if not PageOps.store_leased(self.session, self.site_id, self.owner, record,
                                        self.seq):
                raise LeaseLost(self.site_id)
            if record.get("analysed") and (self.pages + 1) % 10 == 0:
                self.event("pages_fetched", f"{self.pages + 1} pages analysed on {self.url}")

        self.unit(write)
        if renew:
            self.renewed_at = started
        self.seq += 1
        if record.get("analysed"):
            self.pages += 1

    def on_event(self, kind: str, data: dict) -> None:
        template = EVENT_MESSAGES.get(kind)
        if template:
            message = template.format(url=data.get("url", ""),
                                      reason=data.get("reason", data.get("error", "")))
            self.unit(lambda: self.event(kind, message, data))

    def should_stop(self) -> bool:
        now = time.monotonic()
        if now - self.checked_at < CANCEL_CHECK_SECONDS:
            return False
        self.checked_at = now
        return self.unit(lambda: SiteOps.is_cancelled(self.session, self.site_id))

    def event(self, kind: str, message: str, data: dict | None = None) -> None:
        EventOps.add(self.session, self.batch_id, kind, message, data, site_id=self.site_id)

    def finish(self, status: str, *, report: dict | None = None, scores: dict | None = None,
               error: str | None = None) -> str | None:
        """Record the outcome (event first, so the timeline ends with the batch's). The
        batch is locked before the site (``SiteOps.finish``): the one lock order."""

        def write() -> str | None:
            if status == "completed":
                self.event("site_completed", f"Analysed {self.url}: {self.pages} pages",
                           {"pages": self.pages})
            else:
                self.event("site_failed", f"Failed {self.url}: {error}", {"reason": error})
            try:
                return SiteOps.finish(self.session, self.site_id, self.owner, status=status,
                                      compare=compare, report=report, scores=scores,
                                      error=error)
            except LeaseNotHeld:
                raise LeaseLost(self.site_id) from None

        batch_status = self.unit(write)
        batch_finished(self.task, self.batch_id, batch_status)
        return batch_status


def _acquire(task: Any, site_id: int, owner: str) -> int | str:
    """Lease the site this message resumes, or (a message for a pending site is a doorbell)
    the fairest pending site; returns the leased site's id, or why there is none."""
    config = current_app.config
    max_attempts, lease = config["SITE_MAX_ATTEMPTS"], config["SITE_LEASE_SECONDS"]
    session = task.session
    if SiteOps.acquire_lease(session, site_id, owner, lease, max_attempts, resume_only=True):
        return site_id
    chosen = _claim_fair_site(session, owner, lease, max_attempts, site_id)
    if chosen is not None:
        return chosen
    if SiteOps.next_fair_site(session) is not None:
        # Lost every race while work is still pending: a message is a slot of work and is
        # never dropped, so ring again instead of leaving a site without one.
        session.commit()
        analyze_site.apply_async((site_id,), countdown=1)
        return "rang again"
    gave_up = SiteOps.give_up_if_exhausted(session, site_id, owner, max_attempts, compare)
    session.commit()
    if gave_up:
        log.warning("site %s: %s", site_id, gave_up)
        return "gave up"
    return "not leased"


def _begin(task: Any, site_id: int, owner: str) -> tuple[SiteRun, list[dict]]:
    """Read what the crawl needs and mark the start, in the lease's transaction."""
    session = task.session
    inputs = SiteOps.crawl_inputs(session, site_id)
    run = SiteRun(task, site_id, owner, inputs)
    done = PageOps.records(session, site_id)
    run.seq = len(done)
    run.pages = sum(1 for record in done if record.get("analysed"))
    run.event("site_resumed" if done else "site_started",
              f"{'Resuming' if done else 'Started'} {run.url}"
              + (f" after {len(done)} stored pages" if done else "")
              + (f" (attempt {inputs.attempts})" if inputs.attempts > 1 else ""))
    session.commit()
    return run, done


def _claim_fair_site(session: Session, owner: str, lease: int, max_attempts: int,
                     preferred: int) -> int | None:
    """Lease the next pending site in fair order (round-robin across users). Its batch
    stays as it is (its own start message marks it running), so no batch lock is taken
    after the site's."""
    for _ in range(5):  # another worker may take the chosen site first (SQLite)
        chosen = SiteOps.next_fair_site(session, preferred)
        if chosen is None:
            return None
        if SiteOps.acquire_lease(session, chosen[0], owner, lease, max_attempts):
            return chosen[0]
        session.commit()
    return None


def batch_finished(task: Any, batch_id: int, status: str | None) -> None:
    """After the commit that finished a batch: ring change detection (a no-op unless the
    batch is a watchlist run). By name, so the pipeline does not import monitoring; if the
    broker is down, the monitoring dispatcher sweeps it up within a minute."""
    if status is None:
        return
    try:
        task.app.signature("monitoring.detect_changes", args=(batch_id,)).delay()
    except Exception:  # noqa: BLE001 - the database keeps the work
        log.exception("could not enqueue change detection for batch %s", batch_id)


def _crawl(task: Any, run: SiteRun, done: list[dict]) -> str:
    """Crawl with no transaction open, then record the outcome."""
    tools = crawl_tools_for(task.app)
    try:
        result = crawl_site(run.url, max_pages=run.max_pages, fetcher=tools.fetcher,
                            politeness=tools.politeness, done=done, on_record=run.store,
                            should_stop=run.should_stop, on_event=run.on_event,
                            http_fallback=run.http_fallback,
                            parallel=current_app.config["FETCH_PER_ORIGIN"])
    except SiteFailed as failure:
        run.finish("failed", error=failure.reason)
        return "failed"
    except SoftTimeLimitExceeded:
        run.finish("failed", error="time limit exceeded while crawling")
        return "failed"
    if result.stopped:
        # Cancelled (the site is no longer ours), or the worker is shutting down: hand the
        # site back at once instead of making it wait for its lease to expire.
        run.unit(lambda: SiteOps.release_lease(run.session, run.site_id, run.owner))
        return "stopped"
    report = build_report(result.records, result.robots, result.sitemap)
    run.finish("completed", report=report, scores=score_report(report))
    return "completed"


def _fail(task: Any, site_id: int, owner: str, reason: str) -> str:
    """End the site ``failed`` with ``reason`` (it must never stay running)."""
    session = task.session
    session.rollback()
    inputs = SiteOps.crawl_inputs(session, site_id)
    if inputs is None:
        session.rollback()
        return "site deleted"
    try:
        SiteRun(task, site_id, owner, inputs).finish("failed", error=reason[:1000])
    except LeaseLost:
        return "lease lost"
    return "failed"


@shared_task(name="pipeline.analyze_site", bind=True, max_retries=8)
def analyze_site(self, site_id: int) -> str:
    """Crawl and analyse one site under a lease; finish it (and maybe its batch).

    A message naming a pending site is a doorbell: it starts the pending site that is next
    in fair order (round-robin across users, see ``SiteOps.next_fair_site``), so one user's
    backlog in Celery's FIFO queue never holds another user's batch back. A message naming
    a running site (a redelivery, or the requeue's) resumes that site. A retryable database
    error retries the task (each run is one attempt, capped by ``SITE_MAX_ATTEMPTS``); any
    other error fails the site with its reason."""
    owner = self.request.id or f"eager-{uuid.uuid4()}"
    target = site_id
    try:
        acquired = _acquire(self, site_id, owner)
        if isinstance(acquired, str):
            return acquired
        target = acquired
        return _crawl(self, *_begin(self, target, owner))
    except LeaseLost:
        log.warning("site %s: lease lost (taken over by another worker); write refused, "
                    "stopping without writing", target)
        return "lease lost"
    except SQLAlchemyError as error:
        info = record_error(error, self.name)
        self.session.rollback()
        if info.retryable:
            _note_attempt_error(self, target, owner, f"database unavailable: {info.detail}")
            raise self.retry(args=[target], exc=error,
                             countdown=retry_delay(self.request.retries)) from None
        return _fail(self, target, owner, f"the database refused this site's data "
                                          f"({info.category} error): {info.detail}")
    except Exception as error:  # noqa: BLE001 - one bad site never breaks the batch
        log.exception("analysis of site %s failed", target)
        reason = f"internal error: {type(error).__name__}: {error}"[:500]
        outcome = _fail(self, target, owner, reason)
        if outcome == "failed":
            send_alert("site_failed", f"site {target} failed by an internal error: {reason}",
                       {"site_id": target})
        return outcome


def _note_attempt_error(task: Any, site_id: int, owner: str, reason: str) -> None:
    """Best effort: keep why this attempt stopped, for a later "gave up" message."""
    try:
        SiteOps.note_attempt_error(task.session, site_id, owner, reason)
        task.session.commit()
    except SQLAlchemyError:
        task.session.rollback()


@shared_task(name="pipeline.requeue_stalled_sites", bind=True)
def requeue_stalled_sites(self) -> dict:
    """Re-enqueue sites whose lease expired or whose message was lost; restart lost batches."""
    lease = current_app.config["SITE_LEASE_SECONDS"]
    sites = SiteOps.claim_for_requeue(self.session, lease, lambda: str(uuid.uuid4()))
    batches = BatchOps.claim_stalled_pending(self.session, START_WINDOW)
    self.session.commit()
    for site_id, message_id in sites:  # the message id is the owner its lease was claimed for
        analyze_site.apply_async((site_id,), task_id=message_id)
    for batch_id in batches:
        start_batch.delay(batch_id)
    return {"sites": [site_id for site_id, _ in sites], "batches": batches}
