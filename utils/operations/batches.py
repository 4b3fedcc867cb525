"""Batches, their sites' lifecycle, pages, events and comparisons."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models import Batch, BatchEvent, Comparison, Page, Site
from models.base import utcnow
from utils.operations.common import upsert
from utils.operations.pages import bounded_record

FINISHED_SITE = ("completed", "failed")
# How long a start_batch message may be in flight before the requeue sends another.
START_WINDOW = timedelta(minutes=2)


class LeaseNotHeld(Exception):
    """The site is no longer running under this owner's lease (cancelled or taken over)."""
BATCH_STATUS_COLUMNS = (Batch.id, Batch.name, Batch.status, Batch.total_urls, Batch.max_pages,
                        Batch.created_at, Batch.started_at, Batch.finished_at)
BATCH_STATUS_KEYS = tuple(column.key for column in BATCH_STATUS_COLUMNS)
_NB = len(BATCH_STATUS_KEYS)


class SiteStatus:
    """One site of a status read (what the hot reads show; no report)."""

    __slots__ = ("id", "url", "status", "error", "is_own", "display_name", "pages", "report")

    def __init__(self, id: int, url: str, status: str, error: str | None,  # noqa: A002
                 is_own: bool, display_name: str | None = None, pages: int = 0,
                 report: dict[str, Any] | None = None) -> None:
        self.id, self.url, self.status, self.error, self.is_own = id, url, status, error, is_own
        self.display_name, self.pages, self.report = display_name, pages, report


@functools.cache
def _status_aggregated() -> sa.Select:
    """PostgreSQL: the batch's columns and its sites as ``[[id, url, status, error,
    is_own], ...]`` in position order (``[]`` for none), by batch id and owner."""
    batches, sites = Batch.__table__, Site.__table__
    site = sa.func.json_build_array(sites.c.id, sites.c.url, sites.c.status, sites.c.error,
                                    sites.c.is_own)
    site_list = (sa.select(sa.func.coalesce(
        sa.func.json_agg(postgresql.aggregate_order_by(site, sites.c.position, sites.c.id)),
        sa.literal_column("'[]'::json")))
        .where(sites.c.batch_id == batches.c.id).correlate(batches).scalar_subquery())
    return (sa.select(*[batches.c[key] for key in BATCH_STATUS_KEYS], site_list)
            .where(batches.c.id == sa.bindparam("batch_id"),
                   batches.c.user_id == sa.bindparam("user_id")))


@functools.cache
def _status_statement(for_page: bool) -> sa.Select:
    """The status read's statement (built once per process and variant; the compiled form
    is then cached by SQLAlchemy). Columns: the batch's, then site id, url, status, error,
    is_own, and for the page last_event_id, display_name, title, og_site_name, pages."""
    batches, sites = Batch.__table__, Site.__table__
    columns: list[Any] = [batches.c[key] for key in BATCH_STATUS_KEYS]
    columns += [sites.c.id, sites.c.url, sites.c.status, sites.c.error, sites.c.is_own]
    if for_page:
        pages_table, events = Page.__table__, BatchEvent.__table__
        pages = (sa.select(sa.func.count()).select_from(pages_table)
                 .where(pages_table.c.site_id == sites.c.id,
                        pages_table.c.analysed.is_(True))
                 .correlate(sites).scalar_subquery())
        last_event = (sa.select(sa.func.max(events.c.id))
                      .where(events.c.batch_id == batches.c.id)
                      .correlate(batches).scalar_subquery())
        columns += [last_event, sites.c.display_name,
                    sites.c.report["title"].as_string(),
                    sites.c.report[("open_graph", "og:site_name")].as_string(), pages]
    return (sa.select(*columns).select_from(batches)
            .outerjoin(sites, sites.c.batch_id == batches.c.id)
            .where(batches.c.id == sa.bindparam("batch_id"),
                   batches.c.user_id == sa.bindparam("user_id"))
            .order_by(sites.c.position, sites.c.id))


BATCH_STATUS_OF_SITE = (sa.select(Batch.status).join(Site, Site.batch_id == Batch.id)
                        .where(Site.id == sa.bindparam("site_id")))
CompareFn = Callable[[dict[str, dict | None]], dict[str, Any]]


class BatchOps:
    """Create, read, list, cancel and delete batches; decide when one is finished."""

    @staticmethod
    def create(session: Session, user_id: int, name: str, urls: list[str], max_pages: int,
               own_url: str | None = None, *, start_within: timedelta = START_WINDOW,
               scheme_guessed: set[str] | frozenset[str] = frozenset()) -> Batch:
        """One transaction's worth of rows: the batch and its sites (bulk insert);
        ``own_url`` (one of ``urls``) marks the user's own site.

        The caller enqueues ``start_batch`` after the commit; ``start_within`` is how long the
        requeue leaves that message alone before it sends another. ``scheme_guessed``: the
        URLs typed without a scheme (https was assumed; the crawl may fall back to http)."""
        batch = Batch(user_id=user_id, name=name, max_pages=max_pages, total_urls=len(urls),
                      status="pending", enqueued_until=utcnow() + start_within)
        session.add(batch)
        session.flush()
        session.execute(sa.insert(Site), [
            {"batch_id": batch.id, "position": i, "url": url, "status": "pending",
             "is_own": url == own_url, "scheme_guessed": url in scheme_guessed}
            for i, url in enumerate(urls)])
        EventOps.add(session, batch.id, "batch_created",
                     f"Batch created with {len(urls)} site{'' if len(urls) == 1 else 's'}")
        return batch

    @staticmethod
    def get_for_user(session: Session, batch_id: int, user_id: int) -> Batch | None:
        return session.scalar(sa.select(Batch).where(Batch.id == batch_id,
                                                     Batch.user_id == user_id))

    @staticmethod
    def status_for_user(session: Session, batch_id: int, user_id: int, *,
                        for_page: bool = False
                        ) -> tuple[SimpleNamespace, list[SiteStatus], int] | None:
        """(batch, sites, progress) for the hot status reads (the API's batch read, the batch
        page's 1-second poll): ONE query, no ORM objects, reports never loaded. None if the
        batch is not the user's. ``for_page`` adds what the page shows: each site's
        ``pages`` (analysed so far) and the two report facts its name comes from, and the
        batch's ``last_event_id``.

        The statement is built once per process and runs as Core on the session's
        connection (no ORM compile or loading step); rows are read by position. On
        PostgreSQL the API's read takes the sites as one JSON array (``json_agg``), so one
        row is read instead of one per site."""
        connection = session.connection()
        if not for_page and connection.dialect.name == "postgresql":
            # The sites come as one JSON array (built by PostgreSQL): one row to read.
            row = connection.execute(_status_aggregated(),
                                     {"batch_id": batch_id, "user_id": user_id}).first()
            if row is None:
                return None
            batch = SimpleNamespace(**dict(zip(BATCH_STATUS_KEYS, row[:_NB], strict=True)))
            sites = [SiteStatus(*site) for site in row[_NB]]
            finished = sum(1 for site in sites if site.status in FINISHED_SITE)
            return batch, sites, BatchOps.progress_from(batch, finished)
        rows = connection.execute(
            _status_statement(for_page), {"batch_id": batch_id, "user_id": user_id}).all()
        if not rows:
            return None
        first = rows[0]
        batch = SimpleNamespace(**dict(zip(BATCH_STATUS_KEYS, first[:_NB], strict=True)))
        if for_page:
            batch.last_event_id = first[_NB + 5] or 0
            sites = [SiteStatus(r[_NB], r[_NB + 1], r[_NB + 2], r[_NB + 3], r[_NB + 4],
                                r[_NB + 6], r[_NB + 9] or 0,
                                {"title": r[_NB + 7], "open_graph": {"og:site_name": r[_NB + 8]}})
                     for r in rows if r[_NB] is not None]
        else:
            sites = [SiteStatus(r[_NB], r[_NB + 1], r[_NB + 2], r[_NB + 3], r[_NB + 4])
                     for r in rows if r[_NB] is not None]
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
        """0-100: sites that really finished (completed or failed; not cancelled) over all
        sites (100 once the batch completed)."""
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
    def mark_started(session: Session, batch_id: int, lease_seconds: int) -> list[int]:
        """Mark the batch running; return the sites to send a message for.

        The first start returns every site: each message is one slot of work (see
        ``SiteOps.next_fair_site``), and a site that another user's message already started
        still owes the queue its own. A redelivered start returns only the pending sites
        whose message window passed. Either way those pending sites are marked enqueued for
        ``lease_seconds``."""
        now = utcnow()
        first = session.execute(
            sa.update(Batch).where(Batch.id == batch_id, Batch.enqueued_until.is_not(None))
            .values(enqueued_until=None, started_at=sa.func.coalesce(Batch.started_at, now),
                    status=sa.case((Batch.status == "pending", "running"),
                                   else_=Batch.status))
            .execution_options(synchronize_session=False)).rowcount == 1
        if not first:
            session.execute(sa.update(Batch).where(Batch.id == batch_id,
                                                   Batch.status == "pending")
                            .values(status="running", started_at=now)
                            .execution_options(synchronize_session=False))
        expired = sa.or_(Site.lease_until.is_(None), Site.lease_until < now)
        waiting = sa.and_(Site.batch_id == batch_id, Site.status == "pending", expired)
        selected = (sa.true() if first else waiting)
        site_ids = list(session.scalars(sa.select(Site.id).where(Site.batch_id == batch_id,
                                                                 selected)
                                        .order_by(Site.position)))
        session.execute(sa.update(Site).where(waiting)
                        .values(lease_until=now + timedelta(seconds=lease_seconds))
                        .execution_options(synchronize_session=False))
        return site_ids

    @staticmethod
    def cancel(session: Session, batch: Batch) -> bool:
        """Cancel an unfinished batch: its unfinished sites become ``cancelled``.

        Locks the batch, then its sites (the one lock order), and decides on the locked row,
        so a batch finishing at the same moment is never overwritten."""
        batch = BatchOps.lock(session, batch.id) or batch
        if batch.status not in ("pending", "running"):
            return False
        now = utcnow()
        batch.status = "cancelled"
        batch.finished_at = now
        session.execute(sa.update(Site).where(Site.batch_id == batch.id,
                                              Site.status.in_(("pending", "running")))
                        .values(status="cancelled", error=None, lease_until=None,
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
    def claim_stalled_pending(session: Session, resend_within: timedelta) -> list[int]:
        """Batches whose start message was not consumed within its window (it was lost);
        each is claimed for ``resend_within`` so it is re-sent at most once per window."""
        now = utcnow()
        stalled = sa.and_(Batch.enqueued_until.is_not(None), Batch.enqueued_until < now,
                          Batch.status.in_(("pending", "running")))
        claimed = []
        for batch_id in session.scalars(sa.select(Batch.id).where(stalled).limit(500)):
            result = session.execute(
                sa.update(Batch).where(Batch.id == batch_id, stalled)
                .values(enqueued_until=now + resend_within)
                .execution_options(synchronize_session=False))
            if result.rowcount == 1:
                claimed.append(batch_id)
        return claimed


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
    def crawl_inputs(session: Session, site_id: int) -> SimpleNamespace | None:
        """What a crawl needs, read once before it starts (no lazy loads later)."""
        row = session.execute(sa.select(Site.url, Site.batch_id, Batch.max_pages,
                                        Site.attempts, Site.scheme_guessed).join(Batch)
                              .where(Site.id == site_id)).first()
        if row is None:
            return None
        return SimpleNamespace(url=row.url, batch_id=row.batch_id, max_pages=row.max_pages,
                               attempts=row.attempts, scheme_guessed=row.scheme_guessed)

    @staticmethod
    def acquire_lease(session: Session, site_id: int, owner: str, seconds: int,
                      max_attempts: int = 1_000_000, *, resume_only: bool = False) -> bool:
        """Take the site for ``owner`` if it is pending (unless ``resume_only``), its lease
        expired, or owner holds it, and fewer than ``max_attempts`` attempts were made (each
        lease taken is one)."""
        now = utcnow()
        running_batch = sa.select(Batch.id).where(Batch.id == Site.batch_id,
                                                  Batch.status.in_(("pending", "running")))
        resumable = sa.and_(Site.status == "running",
                            sa.or_(Site.lease_until < now, Site.lease_owner == owner))
        result = session.execute(
            sa.update(Site)
            .where(Site.id == site_id, running_batch.exists(), Site.attempts < max_attempts,
                   resumable if resume_only else sa.or_(Site.status == "pending", resumable))
            .values(status="running", lease_owner=owner,
                    lease_until=now + timedelta(seconds=seconds),
                    attempts=Site.attempts + 1,
                    started_at=sa.func.coalesce(Site.started_at, now))
            .execution_options(synchronize_session=False))
        return result.rowcount == 1

    @staticmethod
    def next_fair_site(session: Session, preferred: int | None = None
                       ) -> tuple[int, int] | None:
        """(site id, batch id) of the pending site to start next: round-robin across users,
        the user with the fewest running sites first, then ``preferred`` (the message's own
        site) among equals, then the oldest batch, then the batch's own order. Sites of
        batches whose start message is still queued count too, so a newcomer's batch never
        waits behind another user's backlog."""
        # Per user, over unfinished batches: sites running now, and sites already served
        # (started at all). The user with fewer running sites goes first; among equals, the
        # one served least (round-robin, even when every worker finished at once).
        served = (sa.select(Batch.user_id,
                            sa.func.sum(sa.case((Site.status == "running", 1), else_=0))
                            .label("running"),
                            sa.func.sum(sa.case((Site.status != "pending", 1), else_=0))
                            .label("served"))
                  .select_from(Site).join(Batch, Batch.id == Site.batch_id)
                  .where(Batch.status.in_(("pending", "running")))
                  .group_by(Batch.user_id).cte("served"))
        query = (sa.select(Site.id, Site.batch_id).join(Batch, Batch.id == Site.batch_id)
                 .outerjoin(served, served.c.user_id == Batch.user_id)
                 .where(Site.status == "pending", Batch.status.in_(("pending", "running")))
                 .order_by(sa.func.coalesce(served.c.running, 0),
                           sa.func.coalesce(served.c.served, 0),
                           sa.case((Site.id == (preferred or 0), 0), else_=1),
                           Batch.id, Site.position, Site.id)
                 .limit(1))
        if session.get_bind().dialect.name == "postgresql":
            # Concurrent workers take different sites instead of queueing on one row (or on
            # a row a cut-off host still holds). Only the site is locked: no batch lock is
            # taken after it, so the lock order (batch, then site) holds.
            query = query.with_for_update(of=Site, skip_locked=True)
        row = session.execute(query).first()
        return (row.id, row.batch_id) if row else None

    @staticmethod
    def give_up_if_exhausted(session: Session, site_id: int, owner: str, max_attempts: int,
                             compare: CompareFn) -> str | None:
        """Fail a site that used up its attempts (and finish its batch if it was the last).

        Returns the site's error when it gave up, else None. Batch first, then site."""
        site = session.get(Site, site_id)
        if site is None or site.attempts < max_attempts:
            return None
        BatchOps.lock(session, site.batch_id)
        now = utcnow()
        last = site.error or "the worker running it stopped before finishing"
        error = f"gave up after {site.attempts} attempts: {last}"[:2000]
        updated = session.execute(
            sa.update(Site).where(
                Site.id == site_id, Site.attempts >= max_attempts,
                sa.or_(Site.status == "pending",
                       sa.and_(Site.status == "running",
                               sa.or_(Site.lease_until < now, Site.lease_owner == owner))))
            .values(status="failed", error=error, lease_until=None, finished_at=now)
            .execution_options(synchronize_session=False))
        if updated.rowcount != 1:
            return None
        BatchOps.complete_if_done(session, site.batch_id, compare)
        return error

    @staticmethod
    def release_lease(session: Session, site_id: int, owner: str) -> bool:
        """End ``owner``'s lease now (the next requeue resumes the site); False if not held."""
        return session.execute(
            sa.update(Site).where(Site.id == site_id, Site.lease_owner == owner,
                                  Site.status == "running")
            .values(lease_until=utcnow())
            .execution_options(synchronize_session=False)).rowcount == 1

    @staticmethod
    def note_attempt_error(session: Session, site_id: int, owner: str, reason: str) -> None:
        """Remember why an attempt stopped (shown if the site finally gives up)."""
        session.execute(sa.update(Site).where(Site.id == site_id, Site.lease_owner == owner,
                                              Site.status == "running")
                        .values(error=reason[:2000])
                        .execution_options(synchronize_session=False))

    @staticmethod
    def claim_for_requeue(session: Session, lease_seconds: int, new_owner: Callable[[], str]
                          ) -> list[tuple[int, str]]:
        """Sites to send again: running with an expired lease (their worker stopped), or
        pending in a running batch whose enqueue window passed (their message was lost).

        Each is claimed for one lease under a new owner id, the id of the message the caller
        sends: at most one message per site is in flight, and it is not re-sent before that
        lease could have expired."""
        now = utcnow()
        running_batch = sa.select(Batch.id).where(Batch.id == Site.batch_id,
                                                  Batch.status == "running").exists()
        due = sa.and_(
            sa.or_(Site.lease_until.is_(None), Site.lease_until < now),
            sa.or_(Site.status == "running", sa.and_(Site.status == "pending", running_batch)))
        claimed = []
        for site_id in session.scalars(sa.select(Site.id).where(due).limit(1000)):
            owner = new_owner()
            result = session.execute(
                sa.update(Site).where(Site.id == site_id, due)
                .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease_seconds))
                .execution_options(synchronize_session=False))
            if result.rowcount == 1:
                claimed.append((site_id, owner))
        return claimed

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
    def is_cancelled(session: Session, site_id: int) -> bool:
        """Polled by every crawl (built once; run on the session's connection)."""
        status = session.connection().scalar(BATCH_STATUS_OF_SITE, {"site_id": site_id})
        return status == "cancelled"


PAGE_COLUMNS = ("site_id", "seq", "url", "final_url", "status_code", "analysed", "is_homepage",
                "record", "truncated", "created_at")
LEASE_HELD = sa.select(Site.id).where(Site.id == sa.bindparam("site_id"),
                                      Site.lease_owner == sa.bindparam("owner"),
                                      Site.status == "running")
_STORE_LEASED: dict[str, sa.Insert] = {}


def _store_leased_statement(dialect: str) -> sa.Insert:
    """``INSERT INTO pages SELECT :values FROM sites WHERE <lease held> FOR SHARE ON CONFLICT
    DO NOTHING`` (SQLite has no row locks: its single writer serialises the same way)."""
    statement = _STORE_LEASED.get(dialect)
    if statement is None:
        table = Page.__table__
        source = sa.select(Site.id, *(sa.bindparam(f"p_{name}", type_=table.c[name].type)
                                      for name in PAGE_COLUMNS[1:]))
        source = source.where(*LEASE_HELD.whereclause.clauses).with_for_update(read=True)
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = _STORE_LEASED[dialect] = (
            insert(table).from_select(list(PAGE_COLUMNS), source)
            .on_conflict_do_nothing(index_elements=["site_id", "url"]))
    return statement


class PageOps:
    """Pages as the crawler yields them; keyed by (site_id, url) so retries never duplicate."""

    @staticmethod
    def store(session: Session, site_id: int, record: dict[str, Any], seq: int) -> None:
        record, truncated = bounded_record(record)  # at most MAX_RECORD_BYTES of JSON
        upsert(session, Page.__table__, [{
            "site_id": site_id, "seq": seq, "url": record["url"],
            "final_url": (record.get("final_url") or "")[:2048] or None,
            "status_code": record.get("status_code"),
            "analysed": bool(record.get("analysed")),
            "is_homepage": bool(record.get("is_homepage")), "record": record,
            "truncated": truncated, "created_at": utcnow()}], keys=["site_id", "url"])

    @staticmethod
    def store_leased(session: Session, site_id: int, owner: str, record: dict[str, Any],
                     seq: int) -> bool:
        """Store a page only while ``owner`` holds the site's lease: ONE statement
        (``INSERT ... SELECT ... FROM sites WHERE <lease held> FOR SHARE``) instead of a
        lease UPDATE then an insert. The share lock on the site row lasts until the caller's
        commit, so a cancel, delete or takeover (each an UPDATE or DELETE of that row) waits
        for this transaction or has already made it insert nothing: no late writer. Returns
        False when the lease is not held (a page already stored under the key is kept).

        The statement is built once per dialect and run on the session's connection (no ORM
        bulk layer): this runs once per crawled page. The record is bounded first
        (``bounded_record``: at most MAX_RECORD_BYTES of JSON, ``truncated`` when cut)."""
        record, truncated = bounded_record(record)
        params = {
            "site_id": site_id, "owner": owner, "p_seq": seq, "p_url": record["url"],
            "p_final_url": (record.get("final_url") or "")[:2048] or None,
            "p_status_code": record.get("status_code"),
            "p_analysed": bool(record.get("analysed")),
            "p_is_homepage": bool(record.get("is_homepage")), "p_record": record,
            "p_truncated": truncated, "p_created_at": utcnow()}
        connection = session.connection()
        if connection.execute(_store_leased_statement(connection.dialect.name),
                              params).rowcount == 1:
            return True
        # Nothing inserted: the lease is gone, or (a redelivery) the page is already stored.
        return connection.execute(LEASE_HELD, params).first() is not None

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
