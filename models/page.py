"""A fetched page of a site; unique per (site, url) so a retried task never duplicates."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import TimestampMixin, db


class Page(TimestampMixin, db.Model):
    __tablename__ = "pages"
    __table_args__ = (sa.UniqueConstraint("site_id", "url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(default=0)
    url: Mapped[str] = mapped_column(sa.String(2048))
    final_url: Mapped[str | None] = mapped_column(sa.String(2048))
    status_code: Mapped[int | None]
    analysed: Mapped[bool] = mapped_column(default=False)
    is_homepage: Mapped[bool] = mapped_column(default=False)
    truncated: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    record: Mapped[dict[str, Any]]
