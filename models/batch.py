"""Batches, their activity timeline and their comparison."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import TimestampMixin, db

if TYPE_CHECKING:
    from models.site import Site

BATCH_STATUSES = ("pending", "running", "completed", "partial", "failed", "cancelled")
FINISHED_BATCH_STATUSES = ("completed", "partial", "failed", "cancelled")


class Batch(TimestampMixin, db.Model):
    __tablename__ = "batches"
    __table_args__ = (
        sa.CheckConstraint("max_pages BETWEEN 1 AND 200", name="max_pages_range"),
        sa.Index("ix_batches_user_created", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(20), default="pending", index=True)
    max_pages: Mapped[int] = mapped_column(default=10)
    total_urls: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime | None]
    enqueued_until: Mapped[datetime | None]  # a start message is in flight until then
    finished_at: Mapped[datetime | None]

    sites: Mapped[list[Site]] = relationship(
        back_populates="batch", cascade="all, delete-orphan", passive_deletes=True,
        order_by="Site.position")


class BatchEvent(TimestampMixin, db.Model):
    __tablename__ = "batch_events"
    __table_args__ = (sa.Index("ix_batch_events_batch_id_id", "batch_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(sa.ForeignKey("batches.id", ondelete="CASCADE"))
    site_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    message: Mapped[str] = mapped_column(sa.Text)
    data: Mapped[dict[str, Any] | None]


class Comparison(TimestampMixin, db.Model):
    __tablename__ = "comparisons"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(
        sa.ForeignKey("batches.id", ondelete="CASCADE"), unique=True)
    data: Mapped[dict[str, Any]]

