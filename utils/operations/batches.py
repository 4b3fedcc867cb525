"""Batches, their sites' lifecycle, pages, events and comparisons."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from models import Batch, BatchEvent, Comparison, Page, Site
from models.base import utcnow
from utils.operations.common import upsert
from utils.operations.pages import bounded_record

FINISHED_SITE = ("completed", "failed")


class LeaseNotHeld(Exception):
    """The site is no longer running under this owner's lease (cancelled or taken over)."""
BATCH_STATUS_COLUMNS = (Batch.id, Batch.name, Batch.status, Batch.total_urls, Batch.max_pages,
                        Batch.created_at, Batch.started_at, Batch.finished_at)
CompareFn = Callable[[dict[str, dict | None]], dict[str, Any]]


class BatchOps:
    """Create, read, list, cancel and delete batches; decide when one is finished."""

    @staticmethod
    def create(session: Session, user_id: int, name: str, urls: list[str], max_pages: int
               ) -> Batch:
        """One transaction's worth of rows: the batch and its sites (bulk insert)."""
        batch = Batch(user_id=user_id, name=name, max_pages=max_pages, total_urls=len(urls),
                      status="pending")
        session.add(batch)
        session.flush()
        session.execute(sa.insert(Site), [
            {"batch_id": batch.id, "position": i, "url": url, "status": "pending"}
            for i, url in enumerate(urls)])
        EventOps.add(session, batch.id, "batch_created", f"Batch created with {len(urls)} sites")
        return batch

    @staticmethod
    def get_for_user(session: Session, batch_id: int, user_id: int) -> Batch | None:
        return session.scalar(sa.select(Batch).where(Batch.id == batch_id,
                                                     Batch.user_id == user_id))

    @staticmethod
    def status_for_user(session: Session, batch_id: int, user_id: int
                        ) -> tuple[SimpleNamespace, list[SimpleNamespace], int] | None:
        """(batch, sites, progress) for the hot status read: one query, no ORM objects,
        reports never loaded. None if the batch is not the user's."""
        rows = session.execute(
            sa.select(*BATCH_STATUS_COLUMNS, Site.id.label("site_id"), Site.url,
                      Site.status.label("site_status"), Site.error)
            .select_from(Batch).outerjoin(Site, Site.batch_id == Batch.id)
            .where(Batch.id == batch_id, Batch.user_id == user_id)
            .order_by(Site.position, Site.id)).all()
        if not rows:
            return None
        batch = SimpleNamespace(**{column.key: getattr(rows[0], column.key)
                                   for column in BATCH_STATUS_COLUMNS})
        sites = [SimpleNamespace(id=row.site_id, url=row.url, status=row.site_status,
                                 error=row.error) for row in rows if row.site_id is not None]
        finished = sum(1 for site in sites if site.status in FINISHED_SITE)
        return batch, sites, BatchOps.progress_from(batch, finished)

    @staticmethod
    def get(session: Session, batch_id: int) -> Batch | None:
        return session.get(Batch, batch_id)

    @staticmethod
    def list_for_user(session: Session, user_id: int, *, before_id: int | None = None,
                      limit: int = 20) -> tuple[list[Batch], int | None]:
        """Newest first; returns the page and the cursor of the next page (or None)."""
        query = sa.select(Batch).where(Batch.user_id == user_id)
        if before_id is not None:
            query = query.where(Batch.id < before_id)
        rows = list(session.scalars(query.order_by(Batch.id.desc()).limit(limit + 1)))
        next_cursor = rows[limit - 1].id if len(rows) > limit else None
        return rows[:limit], next_cursor

    @staticmethod
    def progress(session: Session, batch: Batch) -> int:
        """0-100: finished sites over all sites (100 once the batch is finished)."""
        finished = session.scalar(sa.select(sa.func.count()).where(
            Site.batch_id == batch.id, Site.status.in_(FINISHED_SITE))) or 0
        return BatchOps.progress_from(batch, finished)

    @staticmethod
    def progress_from(batch: Batch | SimpleNamespace, finished_sites: int) -> int:
        """The progress rule from an already-counted number of finished sites."""
        if batch.status in ("completed", "partial", "failed"):
            return 100
        return int(100 * finished_sites / batch.total_urls) if batch.total_urls else 0

    @staticmethod
    def mark_started(session: Session, batch_id: int) -> list[int]:
        """pending -> running; returns the ids of the sites still pending."""
        session.execute(sa.update(Batch).where(Batch.id == batch_id, Batch.status == "pending")
                        .values(status="running", started_at=utcnow()))
        return list(session.scalars(sa.select(Site.id).where(
            Site.batch_id == batch_id, Site.status == "pending").order_by(Site.position)))

    @staticmethod
    def cancel(session: Session, batch: Batch) -> bool:
        """Cancel an unfinished batch: its unfinished sites fail as cancelled."""
        if batch.status not in ("pending", "running"):
            return False
        now = utcnow()
        batch.status = "cancelled"
        batch.finished_at = now
        session.execute(sa.update(Site).where(Site.batch_id == batch.id,
                                              Site.status.in_(("pending", "running")))
                        .values(status="failed", error="cancelled", lease_until=None,
                                finished_at=now))
        EventOps.add(session, batch.id, "batch_cancelled", "Batch cancelled")
        return True

    @staticmethod
    def delete(session: Session, batch: Batch) -> None:
        session.delete(batch)

    @staticmethod
    def lock(session: Session, batch_id: int) -> Batch | None:
        """Serialise writers of one batch (row lock on PostgreSQL, write lock on SQLite)."""
        session.execute(sa.update(Batch).where(Batch.id == batch_id)
                        .values(status=Batch.status))
        return session.get(Batch, batch_id, populate_existing=True)

    @staticmethod
    def complete_if_done(session: Session, batch_id: int, compare: CompareFn) -> str | None:
        """If no site is left unfinished, store the comparison and the final status.

        Must run in the transaction that finished a site, after ``lock``. Returns the new
        status, or None when the batch is not finished.
        """
        batch = session.get(Batch, batch_id)
        if batch is None or batch.status in ("completed", "partial", "failed", "cancelled"):
            return None
        rows = session.execute(sa.select(Site.id, Site.status, Site.report)
                               .where(Site.batch_id == batch_id)).all()
        if any(status not in FINISHED_SITE for _, status, _ in rows):
            return None
        failed = sum(1 for _, status, _ in rows if status == "failed")
        batch.status = ("failed" if failed == len(rows) else
                        "partial" if failed else "completed")
        batch.finished_at = utcnow()
        reports = {str(site_id): (report if status == "completed" else None)
                   for site_id, status, report in rows}
        upsert(session, Comparison.__table__,
               [{"batch_id": batch_id, "data": compare(reports), "created_at": utcnow()}],
               keys=["batch_id"], update=["data"])
        EventOps.add(session, batch_id, "batch_finished",
                     f"Batch finished: {batch.status} ({len(rows) - failed} of {len(rows)} "
                     "sites analysed)", {"status": batch.status})
        return batch.status

    @staticmethod
    def stalled_pending(session: Session, older_than: timedelta) -> list[int]:
        """Batches still pending long after creation (their start message was lost)."""
        cutoff = utcnow() - older_than
        return list(session.scalars(sa.select(Batch.id).where(
            Batch.status == "pending", Batch.created_at < cutoff)))


class SiteOps:
    """The lease and lifecycle of one site's analysis."""

    @staticmethod
    def get(session: Session, site_id: int) -> Site | None:
        return session.get(Site, site_id)

    @staticmethod
    def get_for_user(session: Session, site_id: int, user_id: int) -> Site | None:
        return session.scalar(sa.select(Site).join(Batch).where(
            Site.id == site_id, Batch.user_id == user_id))

    @staticmethod
    def acquire_lease(session: Session, site_id: int, owner: str, seconds: int) -> bool:
        """Take the site for ``owner`` if it is pending, its lease expired, or owner holds it."""
        now = utcnow()
        running_batch = sa.select(Batch.id).where(Batch.id == Site.batch_id,
                                                  Batch.status.in_(("pending", "running")))
        result = session.execute(
            sa.update(Site)
            .where(Site.id == site_id, running_batch.exists(),
                   sa.or_(Site.status == "pending",
                          sa.and_(Site.status == "running",
                                  sa.or_(Site.lease_until < now, Site.lease_owner == owner))))
            .values(status="running", lease_owner=owner,
                    lease_until=now + timedelta(seconds=seconds),
                    attempts=Site.attempts + 1,
                    started_at=sa.func.coalesce(Site.started_at, now))
            .execution_options(synchronize_session=False))
        return result.rowcount == 1

    @staticmethod
    def renew_lease(session: Session, site_id: int, owner: str, seconds: int) -> bool:
        """Extend the lease; False when another owner took the site or it finished."""
        result = session.execute(
            sa.update(Site).where(Site.id == site_id, Site.lease_owner == owner,
                                  Site.status == "running")
            .values(lease_until=utcnow() + timedelta(seconds=seconds))
            .execution_options(synchronize_session=False))
        return result.rowcount == 1

    @staticmethod
    def finish(session: Session, site_id: int, owner: str, *, status: str,
               compare: CompareFn, report: dict | None = None, scores: dict | None = None,
               error: str | None = None) -> str | None:
        """Finish the site (completed or failed) and, if it was the last, the batch.

        Returns the batch's final status when this call finished the batch; raises
        LeaseNotHeld when the owner no longer holds the site.
        """
        site = session.get(Site, site_id)
        if site is None:
            return None
        BatchOps.lock(session, site.batch_id)
        updated = session.execute(
            sa.update(Site).where(Site.id == site_id, Site.status == "running",
                                  Site.lease_owner == owner)
            .values(status=status, report=report, scores=scores, error=error,
                    lease_until=None, finished_at=utcnow())
            .execution_options(synchronize_session=False))
        if updated.rowcount != 1:
            raise LeaseNotHeld(site_id)
        return BatchOps.complete_if_done(session, site.batch_id, compare)

    @staticmethod
    def expired_leases(session: Session) -> list[int]:
        """Sites whose worker stopped renewing their lease."""
        return list(session.scalars(sa.select(Site.id).where(
            Site.status == "running", Site.lease_until < utcnow())))

    @staticmethod
    def pending_in_running_batches(session: Session, started_before: timedelta) -> list[int]:
        cutoff = utcnow() - started_before
        return list(session.scalars(sa.select(Site.id).join(Batch).where(
            Site.status == "pending", Batch.status == "running", Batch.started_at < cutoff)))

    @staticmethod
    def is_cancelled(session: Session, site_id: int) -> bool:
        status = session.scalar(sa.select(Batch.status).join(Site).where(Site.id == site_id))
        return status == "cancelled"


class PageOps:
    """Pages as the crawler yields them; keyed by (site_id, url) so retries never duplicate."""

    @staticmethod
    def store(session: Session, site_id: int, record: dict[str, Any], seq: int) -> None:
        record, truncated = bounded_record(record)  # at most MAX_RECORD_BYTES of JSON
        upsert(session, Page.__table__, [{
            "site_id": site_id, "seq": seq, "url": record["url"],
            "final_url": record.get("final_url"), "status_code": record.get("status_code"),
            "analysed": bool(record.get("analysed")),
            "is_homepage": bool(record.get("is_homepage")), "record": record,
            "truncated": truncated, "created_at": utcnow()}], keys=["site_id", "url"])

    @staticmethod
    def records(session: Session, site_id: int) -> list[dict[str, Any]]:
        """Stored records in crawl order."""
        return list(session.scalars(sa.select(Page.record).where(Page.site_id == site_id)
                                    .order_by(Page.seq, Page.id)))

    @staticmethod
    def for_site(session: Session, site_id: int) -> list[Page]:
        return list(session.scalars(sa.select(Page).where(Page.site_id == site_id)
                                    .order_by(Page.seq, Page.id)))


class EventOps:
    """The activity timeline of a batch."""

    @staticmethod
    def add(session: Session, batch_id: int, kind: str, message: str,
            data: dict[str, Any] | None = None, site_id: int | None = None) -> None:
        session.add(BatchEvent(batch_id=batch_id, site_id=site_id, kind=kind,
                               message=message[:2000], data=data))

    @staticmethod
    def for_batch(session: Session, batch_id: int, after_id: int = 0, limit: int = 500
                  ) -> list[BatchEvent]:
        return list(session.scalars(sa.select(BatchEvent).where(
            BatchEvent.batch_id == batch_id, BatchEvent.id > after_id)
            .order_by(BatchEvent.id).limit(limit)))


class ComparisonOps:
    """The stored comparison of a finished batch."""

    @staticmethod
    def for_batch(session: Session, batch_id: int) -> dict[str, Any] | None:
        return session.scalar(sa.select(Comparison.data).where(Comparison.batch_id == batch_id))
