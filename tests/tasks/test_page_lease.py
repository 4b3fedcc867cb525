"""A page is stored only under the site's lease, in one statement; the lease is renewed only
when a fraction of it has passed; a concurrent cancel waits for the page's transaction."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from models import Batch, Page, Site
from tasks.analysis_tasks import LeaseLost, SiteRun
from tests.factories import UserFactory
from utils.database_access import get_sync_session
from utils.db_operations import BatchOps, PageOps, SiteOps


def leased_site(session, owner: str = "me") -> tuple[int, int]:
    user = UserFactory()
    batch = BatchOps.create(session, user.id, "lease", ["https://a.test/"], 5)
    BatchOps.mark_started(session, batch.id, 600)
    site_id = session.scalar(sa.select(Site.id).where(Site.batch_id == batch.id))
    assert SiteOps.acquire_lease(session, site_id, owner, 600)
    session.commit()
    return batch.id, site_id


def record(url: str, **extra) -> dict:
    return {"url": url, "final_url": url, "status_code": 200, "analysed": True,
            "facts": {"title": "T\x00itle \ud800"}, **extra}


def page_urls(session, site_id: int) -> list[str]:
    return list(session.scalars(sa.select(Page.url).where(Page.site_id == site_id)
                                .order_by(Page.seq)))


def test_stores_only_under_the_lease(app, committed):
    _, site_id = leased_site(committed)
    assert PageOps.store_leased(committed, site_id, "me", record("https://a.test/"), 0)
    assert not PageOps.store_leased(committed, site_id, "other", record("https://a.test/x"), 1)
    committed.commit()
    assert page_urls(committed, site_id) == ["https://a.test/"]
    stored = committed.scalar(sa.select(Page).where(Page.site_id == site_id))
    assert stored.is_homepage is False and stored.status_code == 200 and stored.analysed
    assert stored.record["facts"]["title"] == "Title \ufffd"  # cleaned on the way in
    # The same key again under the lease: kept, not duplicated, and not an error.
    assert PageOps.store_leased(committed, site_id, "me", record("https://a.test/", seq=9), 5)
    committed.commit()
    assert page_urls(committed, site_id) == ["https://a.test/"]


def test_cancelled_or_deleted_site_stores_nothing(app, committed):
    batch_id, site_id = leased_site(committed)
    BatchOps.cancel(committed, committed.get(Batch, batch_id))
    committed.commit()
    assert not PageOps.store_leased(committed, site_id, "me", record("https://a.test/"), 0)
    committed.commit()
    assert page_urls(committed, site_id) == []
    committed.execute(sa.delete(Site).where(Site.id == site_id))
    committed.commit()
    assert not PageOps.store_leased(committed, site_id, "me", record("https://a.test/"), 0)
    committed.rollback()


def test_site_run_renews_the_lease_only_when_due(app, committed):
    _, site_id = leased_site(committed)
    before = committed.scalar(sa.select(Site.lease_until).where(Site.id == site_id))
    with app.app_context():
        with get_sync_session(committed.get_bind(), scope="task", owner="t") as session:
            inputs = SiteOps.crawl_inputs(session, site_id)
            session.commit()
            task = SimpleNamespace(session=session, app=app.extensions["celery"])
            run = SiteRun(task, site_id, "me", inputs)
            run.store(record("https://a.test/"))
            committed.expire_all()
            assert committed.scalar(sa.select(Site.lease_until).where(Site.id == site_id)) == before
            committed.rollback()
            run.renewed_at = time.monotonic() - run.lease_seconds  # a whole lease has passed
            run.store(record("https://a.test/p1"))
            committed.expire_all()
            assert committed.scalar(sa.select(Site.lease_until).where(Site.id == site_id)) > before
            committed.rollback()
            assert time.monotonic() - run.renewed_at < 60
            committed.execute(sa.update(Site).where(Site.id == site_id).values(lease_owner="x"))
            committed.commit()
            with pytest.raises(LeaseLost):
                run.store(record("https://a.test/p2"))
    assert page_urls(committed, site_id) == ["https://a.test/", "https://a.test/p1"]


def test_cancel_waits_for_the_page_transaction(app, engine, committed, postgres_only):
    """The share lock taken by the insert holds off a cancel until the page is committed:
    with a short lock_timeout the cancel fails while the page's transaction is open, and
    succeeds once it committed."""
    batch_id, site_id = leased_site(committed)
    with get_sync_session(engine, scope="task", owner="writer") as writer:
        assert PageOps.store_leased(writer, site_id, "me", record("https://a.test/"), 0)
        with get_sync_session(engine, scope="thread", owner="canceller") as canceller:
            canceller.execute(sa.text("SET LOCAL lock_timeout = '300ms'"))
            with pytest.raises(OperationalError, match="lock timeout"):
                canceller.execute(sa.update(Site).where(Site.id == site_id)
                                  .values(status="cancelled"))
            canceller.rollback()
        writer.commit()
    with get_sync_session(engine, scope="thread", owner="canceller") as canceller:
        assert BatchOps.cancel(canceller, canceller.get(Batch, batch_id))
    committed.expire_all()
    assert page_urls(committed, site_id) == ["https://a.test/"]
    assert committed.scalar(sa.select(Site.status).where(Site.id == site_id)) == "cancelled"
    assert not PageOps.store_leased(committed, site_id, "me", record("https://a.test/x"), 1)
    committed.rollback()
