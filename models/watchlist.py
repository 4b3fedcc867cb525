"""Monitoring: watchlists, their scheduled runs, detected changes and notifications.

A run is an ordinary batch; ``watchlist_runs`` links it to its watchlist and carries the
scheduled slot, whose uniqueness per watchlist makes a second dispatcher harmless.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import JSONType, TimestampMixin, db, utcnow

SCHEDULE_EVERY = ("off", "day", "week")
NOTIFICATION_STATUSES = ("pending", "sent", "failed")
CHANNELS = ("email", "webhook")


class Watchlist(TimestampMixin, db.Model):
    __tablename__ = "watchlists"
    __table_args__ = (
        sa.CheckConstraint("max_pages BETWEEN 1 AND 200", name="max_pages_range"),
        sa.CheckConstraint("schedule_hour BETWEEN 0 AND 23", name="hour_range"),
        sa.Index("ix_watchlists_due", "paused", "next_due_at"),
        sa.Index("ix_watchlists_user_id_id", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(200))
    urls: Mapped[list[str]] = mapped_column(JSONType)
    own_url: Mapped[str | None] = mapped_column(sa.String(2048))
    max_pages: Mapped[int] = mapped_column(default=10)
    schedule_every: Mapped[str] = mapped_column(sa.String(8), default="off")
    schedule_hour: Mapped[int] = mapped_column(default=6)
    schedule_weekday: Mapped[int | None]
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    notify_emails: Mapped[list[str]] = mapped_column(JSONType, default=list)
    webhook_url: Mapped[str | None] = mapped_column(sa.String(2048))
    webhook_secret: Mapped[str | None] = mapped_column(sa.String(128))
    feed_token: Mapped[str] = mapped_column(sa.String(64), unique=True)
    paused: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    next_due_at: Mapped[datetime | None]
    last_slot: Mapped[datetime | None]
    last_viewed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow,
                                                 server_default=sa.func.now())


class WatchlistRun(TimestampMixin, db.Model):
    __tablename__ = "watchlist_runs"
    __table_args__ = (sa.UniqueConstraint("watchlist_id", "scheduled_for"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    watchlist_id: Mapped[int] = mapped_column(
        sa.ForeignKey("watchlists.id", ondelete="CASCADE"), index=True)
    scheduled_for: Mapped[datetime]
    trigger: Mapped[str] = mapped_column(sa.String(10), default="schedule")
    batch_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("batches.id", ondelete="CASCADE"), unique=True)
    changes_computed_at: Mapped[datetime | None]


class Change(db.Model):
    __tablename__ = "changes"
    __table_args__ = (sa.Index("ix_changes_watchlist_id_id", "watchlist_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    watchlist_id: Mapped[int] = mapped_column(sa.ForeignKey("watchlists.id", ondelete="CASCADE"))
    batch_id: Mapped[int] = mapped_column(sa.ForeignKey("batches.id", ondelete="CASCADE"),
                                          index=True)
    site_url: Mapped[str] = mapped_column(sa.String(2048))
    kind: Mapped[str] = mapped_column(sa.String(40))
    before: Mapped[Any | None] = mapped_column(JSONType)
    after: Mapped[Any | None] = mapped_column(JSONType)
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notification(TimestampMixin, db.Model):
    __tablename__ = "notifications"
    __table_args__ = (sa.UniqueConstraint("batch_id", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    watchlist_id: Mapped[int] = mapped_column(
        sa.ForeignKey("watchlists.id", ondelete="CASCADE"), index=True)
    batch_id: Mapped[int] = mapped_column(sa.ForeignKey("batches.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(sa.String(10))
    target: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(10), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    sent_at: Mapped[datetime | None]
    # When the next attempt is due (a lost retry message is re-sent by the dispatcher), and
    # the short lease of the attempt in flight (two messages never send one digest twice).
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    lease_until: Mapped[datetime | None]
