"""Read-only queries the pages and the API need beyond the per-aggregate operations."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from models import Batch, Page, Site


class ReportOps:
    """Figures for the progress views, the comparison and the exports."""

    @staticmethod
    def sites(session: Session, batch_id: int) -> list[Site]:
        """The batch's sites in submission order."""
        return list(session.scalars(sa.select(Site).where(Site.batch_id == batch_id)
                                    .order_by(Site.position, Site.id)))

    @staticmethod
    def analysed_page_counts(session: Session, batch_id: int) -> dict[int, int]:
        """{site_id: pages analysed so far} for every site of the batch that has any."""
        rows = session.execute(
            sa.select(Page.site_id, sa.func.count())
            .join(Site, Site.id == Page.site_id)
            .where(Site.batch_id == batch_id, Page.analysed.is_(True))
            .group_by(Page.site_id)).all()
        return {site_id: count for site_id, count in rows}

    @staticmethod
    def finished_site_counts(session: Session, batch_ids: list[int]) -> dict[int, int]:
        """{batch_id: sites completed or failed} for a page of batches (one query)."""
        if not batch_ids:
            return {}
        rows = session.execute(
            sa.select(Site.batch_id, sa.func.count())
            .where(Site.batch_id.in_(batch_ids), Site.status.in_(("completed", "failed")))
            .group_by(Site.batch_id)).all()
        return {batch_id: count for batch_id, count in rows}

    @staticmethod
    def progress_of(batch: Batch, finished_sites: int) -> int:
        """The same rule as ``BatchOps.progress`` from an already-counted figure."""
        if batch.status in ("completed", "partial", "failed"):
            return 100
        return int(100 * finished_sites / batch.total_urls) if batch.total_urls else 0


class SiteNameOps:
    """The name a user gives a site (shown instead of the one its pages give)."""

    MAX_LENGTH = 200

    @staticmethod
    def rename(session: Session, site: Site, name: str | None) -> None:
        """Set the site's name; an empty name goes back to the one its pages give."""
        cleaned = " ".join((name or "").split())[: SiteNameOps.MAX_LENGTH]
        site.display_name = cleaned or None
        session.flush()
