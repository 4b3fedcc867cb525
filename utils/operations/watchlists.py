"""Watchlists, their runs (dispatch and run now), detected changes and notifications.

Like every operation class these take the session explicitly and never commit. Runs are
keyed on (watchlist, scheduled slot): inserting one twice does nothing, so a second
dispatcher, a restarted beat or a redelivered message never creates two runs for a slot.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from analysis.changes import diff
from models import Batch, Change, Notification, Page, Site, Watchlist, WatchlistRun
from models.base import utcnow
from utils.operations.batches import BatchOps
from utils.operations.common import dialect_name, upsert
from utils.schedule import Schedule, latest_slot, next_slot
from utils.watchlist_input import WatchlistInput

FINISHED_RUN = ("completed", "partial", "failed")
MAX_ATTEMPTS = 5
SEND_LEASE_SECONDS = 120  # above the webhook and SMTP timeouts
OVERDUE_SECONDS = 300  # a pending attempt this late had its message lost


def schedule_of(watchlist: Watchlist) -> Schedule:
    return Schedule(every=watchlist.schedule_every, hour=watchlist.schedule_hour,
                    weekday=watchlist.schedule_weekday, timezone=watchlist.timezone)


def new_token() -> str:
    return secrets.token_urlsafe(32)


class WatchlistOps:
    """Create, read, list, update and delete watchlists."""

    @staticmethod
    def apply(watchlist: Watchlist, data: WatchlistInput, now: datetime) -> str | None:
        """Copy validated fields; returns a new webhook secret when the URL was (re)set."""
        secret = None
        if data.webhook_url and data.webhook_url != watchlist.webhook_url:
            secret = secrets.token_hex(32)
            watchlist.webhook_secret = secret
        if not data.webhook_url:
            watchlist.webhook_secret = None
        watchlist.name = data.name
        watchlist.urls = list(data.urls)
        watchlist.own_url = data.own_url
        watchlist.max_pages = data.max_pages
        watchlist.schedule_every = data.schedule.every
        watchlist.schedule_hour = data.schedule.hour
        watchlist.schedule_weekday = data.schedule.weekday
        watchlist.timezone = data.schedule.timezone
        watchlist.notify_emails = list(data.emails)
        watchlist.webhook_url = data.webhook_url
        watchlist.paused = data.paused
        WatchlistOps.reschedule(watchlist, now)
        return secret

    @staticmethod
    def reschedule(watchlist: Watchlist, now: datetime) -> None:
        """The next slot after now (None when paused or off); slots already past are skipped,
        so editing a schedule never triggers a catch-up run."""
        schedule = schedule_of(watchlist)
        watchlist.next_due_at = (None if watchlist.paused or not schedule.active
                                 else next_slot(schedule, now))

    @staticmethod
    def create(session: Session, user_id: int, data: WatchlistInput,
               now: datetime | None = None) -> tuple[Watchlist, str | None]:
        watchlist = Watchlist(user_id=user_id, feed_token=new_token())
        secret = WatchlistOps.apply(watchlist, data, now or utcnow())
        session.add(watchlist)
        session.flush()
        return watchlist, secret

    @staticmethod
    def as_input(watchlist: Watchlist) -> dict[str, Any]:
        """The stored values in the request shape (the base a PATCH is merged into)."""
        return {"name": watchlist.name, "urls": list(watchlist.urls),
                "own_url": watchlist.own_url, "max_pages": watchlist.max_pages,
                "schedule": {"every": watchlist.schedule_every, "hour": watchlist.schedule_hour,
                             "weekday": watchlist.schedule_weekday,
                             "timezone": watchlist.timezone},
                "notify": {"emails": list(watchlist.notify_emails or []),
                           "webhook_url": watchlist.webhook_url},
                "paused": watchlist.paused}

    @staticmethod
    def get_for_user(session: Session, watchlist_id: int, user_id: int) -> Watchlist | None:
        return session.scalar(sa.select(Watchlist).where(Watchlist.id == watchlist_id,
                                                         Watchlist.user_id == user_id))

    @staticmethod
    def by_feed_token(session: Session, token: str) -> Watchlist | None:
        return session.scalar(sa.select(Watchlist).where(Watchlist.feed_token == token))

    @staticmethod
    def rotate_feed_token(watchlist: Watchlist) -> None:
        watchlist.feed_token = new_token()

    @staticmethod
    def list_for_user(session: Session, user_id: int, *, before_id: int | None = None,
                      limit: int = 50) -> tuple[list[Watchlist], int | None]:
        query = sa.select(Watchlist).where(Watchlist.user_id == user_id)
        if before_id is not None:
            query = query.where(Watchlist.id < before_id)
        rows = list(session.scalars(query.order_by(Watchlist.id.desc()).limit(limit + 1)))
        next_cursor = rows[limit - 1].id if len(rows) > limit else None
        return rows[:limit], next_cursor

    @staticmethod
    def delete(session: Session, watchlist: Watchlist) -> None:
        """The watchlist, its runs, changes and notifications; run batches stay as batches."""
        session.delete(watchlist)

    @staticmethod
    def mark_viewed(watchlist: Watchlist, now: datetime | None = None) -> None:
        watchlist.last_viewed_at = now or utcnow()


class RunOps:
    """Runs: the dispatcher's claim, run now, and the run list."""

    @staticmethod
    def claim_due(session: Session, now: datetime, limit: int = 500) -> list[Watchlist]:
        """Due watchlists, locked for this transaction.

        PostgreSQL: ``FOR UPDATE SKIP LOCKED`` (a concurrent dispatcher takes the others).
        SQLite: a write to the due rows first takes the database's single write lock, so
        the claim is serialised between processes.
        """
        due = sa.and_(Watchlist.paused.is_(False), Watchlist.next_due_at.is_not(None),
                      Watchlist.next_due_at <= now)
        query = sa.select(Watchlist).where(due).order_by(Watchlist.next_due_at,
                                                         Watchlist.id).limit(limit)
        if dialect_name(session) == "postgresql":
            return list(session.scalars(query.with_for_update(skip_locked=True)))
        session.execute(sa.update(Watchlist).where(due)
                        .values(next_due_at=Watchlist.next_due_at)
                        .execution_options(synchronize_session=False))
        return list(session.scalars(query.execution_options(populate_existing=True)))

    @staticmethod
    def dispatch(session: Session, now: datetime, limit: int = 500) -> list[int]:
        """Create the runs of up to ``limit`` due watchlists; returns the new batch ids
        (enqueue their start after the commit). A window missed while down runs once."""
        return RunOps.dispatch_chunk(session, now, limit)[0]

    @staticmethod
    def dispatch_chunk(session: Session, now: datetime, limit: int) -> tuple[list[int], int]:
        """:meth:`dispatch` that also returns how many watchlists it claimed (a caller loops,
        one short transaction per chunk, while a chunk comes back full)."""
        created = []
        claimed = RunOps.claim_due(session, now, limit)
        for watchlist in claimed:
            schedule = schedule_of(watchlist)
            slot = latest_slot(schedule, now)
            if slot is not None and (watchlist.last_slot is None or slot > watchlist.last_slot):
                batch_id = RunOps.start(session, watchlist, slot, "schedule")
                if batch_id is not None:
                    created.append(batch_id)
                watchlist.last_slot = slot
            watchlist.next_due_at = next_slot(schedule, now)
        session.flush()
        return created, len(claimed)

    @staticmethod
    def start(session: Session, watchlist: Watchlist, slot: datetime, trigger: str
              ) -> int | None:
        """Insert the run for (watchlist, slot) and its batch; None if the slot has a run."""
        insert = (postgresql.insert if dialect_name(session) == "postgresql"
                  else sqlite.insert)(WatchlistRun.__table__)
        run_id = session.scalar(
            insert.values(watchlist_id=watchlist.id, scheduled_for=slot, trigger=trigger,
                          created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["watchlist_id", "scheduled_for"])
            .returning(WatchlistRun.__table__.c.id))
        if run_id is None:
            return None
        local = slot.astimezone(ZoneInfo(watchlist.timezone))
        name = f"{watchlist.name} · {local:%Y-%m-%d %H:%M} {watchlist.timezone}"[:200]
        batch = BatchOps.create(session, watchlist.user_id, name, list(watchlist.urls),
                                watchlist.max_pages, own_url=watchlist.own_url)
        session.execute(sa.update(WatchlistRun).where(WatchlistRun.id == run_id)
                        .values(batch_id=batch.id)
                        .execution_options(synchronize_session=False))
        return batch.id

    @staticmethod
    def run_now(session: Session, watchlist: Watchlist, now: datetime | None = None) -> int:
        """A manual run, keyed on the current instant."""
        now = now or utcnow()
        for step in range(100):  # two clicks in the same microsecond get distinct slots
            batch_id = RunOps.start(session, watchlist, now + timedelta(microseconds=step),
                                    "manual")
            if batch_id is not None:
                return batch_id
        raise RuntimeError("could not create a run")  # pragma: no cover

    @staticmethod
    def list_for(session: Session, watchlist_id: int, *, before_id: int | None = None,
                 limit: int = 20) -> tuple[list[Any], int | None]:
        """Runs newest first with their batch's status and times."""
        query = (sa.select(WatchlistRun.id, WatchlistRun.batch_id, WatchlistRun.scheduled_for,
                           WatchlistRun.trigger, Batch.status, Batch.started_at,
                           Batch.finished_at, Batch.created_at)
                 .join(Batch, Batch.id == WatchlistRun.batch_id)
                 .where(WatchlistRun.watchlist_id == watchlist_id))
        if before_id is not None:
            query = query.where(WatchlistRun.id < before_id)
        rows = session.execute(query.order_by(WatchlistRun.id.desc()).limit(limit + 1)).all()
        next_cursor = rows[limit - 1].id if len(rows) > limit else None
        return list(rows[:limit]), next_cursor

    @staticmethod
    def watchlist_of_batch(session: Session, batch_id: int) -> int | None:
        return session.scalar(sa.select(WatchlistRun.watchlist_id)
                              .where(WatchlistRun.batch_id == batch_id))

    @staticmethod
    def finished_uncomputed(session: Session, limit: int = 100) -> list[int]:
        """Batches of runs that finished but whose changes were never computed (a lost
        message): the dispatcher re-enqueues them."""
        return list(session.scalars(
            sa.select(WatchlistRun.batch_id).join(Batch, Batch.id == WatchlistRun.batch_id)
            .where(WatchlistRun.changes_computed_at.is_(None),
                   Batch.status.in_((*FINISHED_RUN, "cancelled")))
            .order_by(WatchlistRun.id).limit(limit)))

    @staticmethod
    def score_history(session: Session, watchlist_id: int, limit: int = 30
                      ) -> list[dict[str, Any]]:
        """[{batch_id, at, sites: {url: scores}}] for the last finished runs, oldest first."""
        runs = session.execute(
            sa.select(WatchlistRun.batch_id, Batch.finished_at)
            .join(Batch, Batch.id == WatchlistRun.batch_id)
            .where(WatchlistRun.watchlist_id == watchlist_id, Batch.status.in_(FINISHED_RUN))
            .order_by(WatchlistRun.batch_id.desc()).limit(limit)).all()
        ids = [run.batch_id for run in runs]
        by_batch: dict[int, dict[str, Any]] = {i: {} for i in ids}
        for batch_id, url, scores in session.execute(
                sa.select(Site.batch_id, Site.url, Site.scores).where(Site.batch_id.in_(ids))):
            by_batch[batch_id][url] = scores
        return [{"batch_id": run.batch_id, "at": run.finished_at, "sites": by_batch[run.batch_id]}
                for run in reversed(runs)]


class ChangeOps:
    """Change detection for a finished run, and the change timeline."""

    @staticmethod
    def _sites(session: Session, batch_id: int) -> dict[str, Any]:
        rows = session.execute(sa.select(Site.id, Site.url, Site.status, Site.report,
                                         Site.scores).where(Site.batch_id == batch_id)).all()
        pages: dict[int, set[str]] = {row.id: set() for row in rows}
        for site_id, url in session.execute(
                sa.select(Page.site_id, Page.url).where(Page.site_id.in_(list(pages)),
                                                        Page.analysed.is_(True))):
            pages[site_id].add(url)
        return {row.url: (row, pages[row.id]) for row in rows}

    @staticmethod
    def detect(session: Session, batch_id: int, now: datetime | None = None
               ) -> list[int] | None:
        """Compute and store the changes of a finished run against the previous finished
        run of its watchlist; returns the ids of the notifications to send.

        Idempotent: the run's ``changes_computed_at`` is claimed with a conditional update,
        so a second call (or a concurrent one) does nothing and returns None.
        """
        now = now or utcnow()
        run = session.scalar(sa.select(WatchlistRun).where(WatchlistRun.batch_id == batch_id))
        status = session.scalar(sa.select(Batch.status).where(Batch.id == batch_id))
        if run is None or status not in (*FINISHED_RUN, "cancelled"):
            return None
        claimed = session.execute(
            sa.update(WatchlistRun).where(WatchlistRun.id == run.id,
                                          WatchlistRun.changes_computed_at.is_(None))
            .values(changes_computed_at=now).execution_options(synchronize_session=False))
        if claimed.rowcount != 1 or status == "cancelled":
            return None
        previous = session.scalar(
            sa.select(WatchlistRun.batch_id).join(Batch, Batch.id == WatchlistRun.batch_id)
            .where(WatchlistRun.watchlist_id == run.watchlist_id,
                   WatchlistRun.batch_id < batch_id, Batch.status.in_(FINISHED_RUN))
            .order_by(WatchlistRun.batch_id.desc()).limit(1))
        if previous is None:
            return []
        old_sites = ChangeOps._sites(session, previous)
        rows = []
        for url, (site, pages) in ChangeOps._sites(session, batch_id).items():
            if url not in old_sites:
                continue
            old, old_pages = old_sites[url]
            changes = diff(old.report if old.status == "completed" else None,
                           site.report if site.status == "completed" else None,
                           before_scores=old.scores, after_scores=site.scores,
                           before_pages=old_pages or None, after_pages=pages or None)
            rows += [{"watchlist_id": run.watchlist_id, "batch_id": batch_id, "site_url": url,
                      "kind": c.kind, "before": c.before, "after": c.after, "detected_at": now}
                     for c in changes]
        if not rows:
            return []
        session.execute(sa.insert(Change), rows)
        return NotificationOps.enqueue_for(session, run.watchlist_id, batch_id)

    @staticmethod
    def for_watchlist(session: Session, watchlist_id: int, *, since: datetime | None = None,
                      before_id: int | None = None, site_url: str | None = None,
                      kind: str | None = None, batch_id: int | None = None,
                      limit: int = 50) -> tuple[list[Change], int | None]:
        """Newest first; the cursor is the last id of the page."""
        query = sa.select(Change).where(Change.watchlist_id == watchlist_id)
        if since is not None:
            query = query.where(Change.detected_at >= since)
        if before_id is not None:
            query = query.where(Change.id < before_id)
        if site_url:
            query = query.where(Change.site_url == site_url)
        if kind:
            query = query.where(Change.kind == kind)
        if batch_id is not None:
            query = query.where(Change.batch_id == batch_id)
        rows = list(session.scalars(query.order_by(Change.id.desc()).limit(limit + 1)))
        next_cursor = rows[limit - 1].id if len(rows) > limit else None
        return rows[:limit], next_cursor

    @staticmethod
    def since_last_visit(session: Session, user_id: int) -> list[dict[str, Any]]:
        """Per watchlist of the user: changes detected after its page was last viewed."""
        rows = session.execute(
            sa.select(Watchlist.id, Watchlist.name, Change.kind, sa.func.count(Change.id))
            .join(Change, Change.watchlist_id == Watchlist.id)
            .where(Watchlist.user_id == user_id,
                   sa.or_(Watchlist.last_viewed_at.is_(None),
                          Change.detected_at > Watchlist.last_viewed_at))
            .group_by(Watchlist.id, Watchlist.name, Change.kind)
            .order_by(Watchlist.id)).all()
        summary: dict[int, dict[str, Any]] = {}
        for watchlist_id, name, kind, count in rows:
            entry = summary.setdefault(watchlist_id, {"id": watchlist_id, "name": name,
                                                      "total": 0, "kinds": {}})
            entry["kinds"][kind] = count
            entry["total"] += count
        return list(summary.values())


class NotificationOps:
    """One digest per run and channel; sent by its own task after the commit."""

    @staticmethod
    def enqueue_for(session: Session, watchlist_id: int, batch_id: int) -> list[int]:
        watchlist = session.get(Watchlist, watchlist_id)
        rows = []
        if watchlist.notify_emails:
            rows.append({"channel": "email", "target": ", ".join(watchlist.notify_emails)})
        if watchlist.webhook_url:
            rows.append({"channel": "webhook", "target": watchlist.webhook_url})
        if not rows:
            return []
        now = utcnow()
        upsert(session, Notification.__table__,
               [dict(row, watchlist_id=watchlist_id, batch_id=batch_id, status="pending",
                     attempts=0, created_at=now, next_attempt_at=now) for row in rows],
               keys=["batch_id", "channel"])
        return list(session.scalars(sa.select(Notification.id).where(
            Notification.batch_id == batch_id, Notification.status == "pending")))

    @staticmethod
    def payload(session: Session, notification_id: int, now: datetime | None = None
                ) -> dict[str, Any] | None:
        """Take the attempt's lease and return everything the sender needs, as plain data
        (no ORM object outlives the transaction the caller ends before sending). None when
        the row is not pending or another attempt holds it, so a duplicated message never
        sends one digest twice at once."""
        now = now or utcnow()
        leased = session.execute(
            sa.update(Notification)
            .where(Notification.id == notification_id, Notification.status == "pending",
                   sa.or_(Notification.lease_until.is_(None), Notification.lease_until < now))
            .values(lease_until=now + timedelta(seconds=SEND_LEASE_SECONDS))
            .execution_options(synchronize_session=False))
        if leased.rowcount != 1:
            return None
        row = session.get(Notification, notification_id, populate_existing=True)
        watchlist = session.get(Watchlist, row.watchlist_id)
        changes, _ = ChangeOps.for_watchlist(session, row.watchlist_id, batch_id=row.batch_id,
                                             limit=10_000)
        return {
            "id": row.id, "channel": row.channel, "target": row.target,
            "attempts": row.attempts, "batch_id": row.batch_id,
            "watchlist": {"id": watchlist.id, "name": watchlist.name,
                          "webhook_secret": watchlist.webhook_secret,
                          "emails": list(watchlist.notify_emails or [])},
            "changes": [change_body(c) for c in reversed(changes)],
        }

    @staticmethod
    def record(session: Session, notification_id: int, error: str | None,
               retry_in: float = 0.0) -> str:
        """Store an attempt's outcome and release the lease: 'sent', 'retry' (next attempt
        due in ``retry_in`` seconds) or 'failed' (after MAX_ATTEMPTS)."""
        row = session.get(Notification, notification_id, populate_existing=True)
        if row is None:
            return "failed"
        now = utcnow()
        row.attempts += 1
        row.lease_until = None
        row.next_attempt_at = None
        if error is None:
            row.status, row.sent_at, row.last_error = "sent", now, None
            return "sent"
        row.last_error = error[:2000]
        if row.attempts >= MAX_ATTEMPTS:
            row.status = "failed"
            return "failed"
        row.next_attempt_at = now + timedelta(seconds=retry_in)
        return "retry"

    @staticmethod
    def overdue(session: Session, now: datetime | None = None, limit: int = 100) -> list[int]:
        """Pending notifications whose attempt is well past due (its message was lost):
        the dispatcher enqueues them again; the lease keeps a late duplicate harmless."""
        now = now or utcnow()
        return list(session.scalars(
            sa.select(Notification.id)
            .where(Notification.status == "pending",
                   Notification.next_attempt_at < now - timedelta(seconds=OVERDUE_SECONDS),
                   sa.or_(Notification.lease_until.is_(None), Notification.lease_until < now))
            .order_by(Notification.id).limit(limit)))

    @staticmethod
    def for_watchlist(session: Session, watchlist_id: int, limit: int = 20
                      ) -> list[Notification]:
        return list(session.scalars(sa.select(Notification)
                                    .where(Notification.watchlist_id == watchlist_id)
                                    .order_by(Notification.id.desc()).limit(limit)))


def change_body(change: Change) -> dict[str, Any]:
    """The API shape of one change."""
    return {"id": change.id, "batch_id": change.batch_id, "site_url": change.site_url,
            "kind": change.kind, "before": change.before, "after": change.after,
            "detected_at": change.detected_at.isoformat()}
