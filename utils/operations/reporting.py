"""Read-only queries the pages and the API need beyond the per-aggregate operations."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from models import Batch, Page, ProcessSnapshot, Site, User
from utils.operations.batches import FINISHED_SITE


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
            .where(Site.batch_id.in_(batch_ids), Site.status.in_(FINISHED_SITE))
            .group_by(Site.batch_id)).all()
        return {batch_id: count for batch_id, count in rows}


class SiteNameOps:
    """The name a user gives a site (shown instead of the one its pages give)."""

    MAX_LENGTH = 200

    @staticmethod
    def rename(session: Session, site: Site, name: str | None) -> None:
        """Set the site's name; an empty name goes back to the one its pages give."""
        cleaned = " ".join((name or "").split())[: SiteNameOps.MAX_LENGTH]
        site.display_name = cleaned or None
        session.flush()


class OverviewOps:
    """The admin overview's figures: process health and activity counts."""

    @staticmethod
    def snapshots_since(session: Session, since: datetime) -> list[ProcessSnapshot]:
        """Every process that reported since ``since`` (live or not), newest report first."""
        return list(session.scalars(sa.select(ProcessSnapshot)
                                    .where(ProcessSnapshot.updated_at >= since)
                                    .order_by(ProcessSnapshot.updated_at.desc())))

    @staticmethod
    def counts(session: Session, since: datetime) -> dict[str, int]:
        """Users, batches, running batches, and sites failed since ``since``."""
        def count(query: sa.Select) -> int:
            return int(session.scalar(query) or 0)

        total = sa.select(sa.func.count())
        return {
            "users": count(total.select_from(User)),
            "batches": count(total.select_from(Batch)),
            "running_batches": count(total.select_from(Batch).where(
                Batch.status.in_(("pending", "running")))),
            "failed_sites_24h": count(total.select_from(Site).where(
                Site.status == "failed", Site.finished_at >= since)),
        }
