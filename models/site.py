"""A site: one URL of a batch, with its lease and its report."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import TimestampMixin, db

if TYPE_CHECKING:
    from models.batch import Batch

SITE_STATUSES = ("pending", "running", "completed", "failed", "cancelled")


class Site(TimestampMixin, db.Model):
    __tablename__ = "sites"
    __table_args__ = (
        sa.UniqueConstraint("batch_id", "url"),
        sa.Index("ix_sites_status_lease", "status", "lease_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(sa.ForeignKey("batches.id", ondelete="CASCADE"),
                                          index=True)
    position: Mapped[int] = mapped_column(default=0)
    url: Mapped[str] = mapped_column(sa.String(2048))
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")
    error: Mapped[str | None] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(default=0)
    lease_until: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(sa.String(200))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    report: Mapped[dict[str, Any] | None]
    scores: Mapped[dict[str, Any] | None]
    display_name: Mapped[str | None] = mapped_column(sa.String(200))  # given by the user
    is_own: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # Typed without a scheme: https was assumed, and the crawl falls back to http when
    # https cannot connect (as browsers do).
    scheme_guessed: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    batch: Mapped[Batch] = relationship(back_populates="sites")

