"""Per-user usage counts and the admission check at batch creation.

Limits (settings): ``USER_MAX_RUNNING_SITES`` unfinished sites at once (default 20),
``USER_MAX_BATCHES_PER_HOUR`` (60) and ``USER_MAX_PAGES_PER_DAY`` (20,000). A limit of 0
turns the check off. Above a limit a new batch is refused with a message and a wait.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from models import Batch, Page, Site
from models.base import utcnow

UNFINISHED_SITE = ("pending", "running")
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
RUNNING_RETRY_SECONDS = 60


@dataclass(frozen=True)
class QuotaRefusal:
    """Why a new batch is refused, and how long to wait before trying again."""

    code: str
    message: str
    retry_after: int
    limit: int
    used: int


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


class UsageOps:
    """What a user is using now: unfinished sites, recent batches, pages of the last day."""

    @staticmethod
    def unfinished_sites(session: Session, user_id: int) -> int:
        return session.scalar(
            sa.select(sa.func.count(Site.id)).join(Batch, Batch.id == Site.batch_id)
            .where(Batch.user_id == user_id, Site.status.in_(UNFINISHED_SITE))) or 0

    @staticmethod
    def batches_since(session: Session, user_id: int, since: datetime
                      ) -> tuple[int, datetime | None]:
        """(count, oldest created_at) of the user's batches created after ``since``."""
        count, oldest = session.execute(
            sa.select(sa.func.count(Batch.id), sa.func.min(Batch.created_at))
            .where(Batch.user_id == user_id, Batch.created_at > since)).one()
        return count or 0, _aware(oldest)

    @staticmethod
    def pages_since(session: Session, user_id: int, since: datetime
                    ) -> tuple[int, datetime | None]:
        """(count, oldest created_at) of pages stored for the user's sites after ``since``."""
        count, oldest = session.execute(
            sa.select(sa.func.count(Page.id), sa.func.min(Page.created_at))
            .join(Site, Site.id == Page.site_id).join(Batch, Batch.id == Site.batch_id)
            .where(Batch.user_id == user_id, Page.created_at > since)).one()
        return count or 0, _aware(oldest)


def _aware(value: datetime | str | None) -> datetime | None:
    """min() over a UTC column comes back naive (SQLite) or as text; make it aware UTC."""
    from datetime import UTC

    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def check_batch_quota(session: Session, user_id: int, *, max_running_sites: int,
                      max_batches_per_hour: int, max_pages_per_day: int
                      ) -> QuotaRefusal | None:
    """None when the user may create a batch now, else the first limit reached."""
    now = utcnow()
    if max_running_sites > 0:
        running = UsageOps.unfinished_sites(session, user_id)
        if running >= max_running_sites:
            return QuotaRefusal(
                "too_many_running_sites",
                f"You have {running} sites waiting or running (limit {max_running_sites}). "
                "Start a new batch when some have finished.",
                RUNNING_RETRY_SECONDS, max_running_sites, running)
    if max_batches_per_hour > 0:
        count, oldest = UsageOps.batches_since(session, user_id, now - HOUR)
        if count >= max_batches_per_hour:
            wait = _seconds_until(oldest + HOUR, now) if oldest else 3600
            return QuotaRefusal(
                "too_many_batches",
                f"You created {count} batches in the last hour (limit {max_batches_per_hour}). "
                f"Try again in {_human(wait)}.", wait, max_batches_per_hour, count)
    if max_pages_per_day > 0:
        count, oldest = UsageOps.pages_since(session, user_id, now - DAY)
        if count >= max_pages_per_day:
            wait = _seconds_until(oldest + DAY, now) if oldest else 86400
            return QuotaRefusal(
                "too_many_pages",
                f"Your batches crawled {count} pages in the last 24 hours "
                f"(limit {max_pages_per_day}). Try again in {_human(wait)}.",
                wait, max_pages_per_day, count)
    return None


def _human(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    if seconds < 5400:
        return f"{math.ceil(seconds / 60)} minutes"
    return f"{math.ceil(seconds / 3600)} hours"
