"""The pipeline run in-process: leases, resume without repeats, completion in the database."""

from __future__ import annotations

from urllib.parse import urlsplit

import sqlalchemy as sa

from models import Batch, BatchEvent, Comparison, Page, Site
from tasks.analysis_tasks import analyze_site, requeue_stalled_sites
from tests.factories import UserFactory
from tests.sites import LocalSite, SiteSpec
from utils.db_operations import BatchOps, SiteOps


def make_batch(session, urls, max_pages=5) -> Batch:
    user = UserFactory()
    batch = BatchOps.create(session, user.id, "test batch", urls, max_pages)
    BatchOps.mark_started(session, batch.id, 600)
    session.commit()
    return batch


def site_ids(session, batch) -> list[int]:
    return list(session.scalars(sa.select(Site.id).where(Site.batch_id == batch.id)
                                .order_by(Site.position)))


def test_batch_completes_with_comparison(app, committed):
    with LocalSite(SiteSpec(title="Alpha", pages=3)) as alpha, \
            LocalSite(SiteSpec(title="Beta", pages=2, broken_link=True)) as beta:
        batch = make_batch(committed, [alpha.url, beta.url])
        for site_id in site_ids(committed, batch):
            assert analyze_site.apply(args=[site_id]).get() == "completed"
    committed.expire_all()
    assert committed.get(Batch, batch.id).status == "completed"
    sites = committed.scalars(sa.select(Site).order_by(Site.position)).all()
    assert [s.report["pages_crawled"] for s in sites] == [4, 3]
    assert {"code": "broken_link", "count": 1} in sites[1].report["issues"]
    assert sites[0].report["emails"] == ["hello@example.test"]
    comparison = committed.scalar(sa.select(Comparison.data))
    assert set(comparison["scores"]) == {str(s.id) for s in sites}
    kinds = committed.scalars(sa.select(BatchEvent.kind)).all()
    assert kinds.count("site_completed") == 2 and kinds[-1] == "batch_finished"


def test_failed_site_makes_batch_partial_with_reason(app, committed):
    with LocalSite(SiteSpec(pages=1)) as good, LocalSite(SiteSpec(homepage_status=500)) as bad:
        batch = make_batch(committed, [good.url, bad.url])
        results = [analyze_site.apply(args=[i]).get() for i in site_ids(committed, batch)]
    assert results == ["completed", "failed"]
    committed.expire_all()
    assert committed.get(Batch, batch.id).status == "partial"
    failed = committed.scalar(sa.select(Site).where(Site.status == "failed"))
    assert "500" in failed.error


def test_all_failed_is_failed(app, committed):
    with LocalSite(SiteSpec(homepage_status=404)) as bad:
        batch = make_batch(committed, [bad.url])
        analyze_site.apply(args=[site_ids(committed, batch)[0]]).get()
    committed.expire_all()
    assert committed.get(Batch, batch.id).status == "failed"


def test_lease_held_by_another_worker_is_respected(app, committed):
    with LocalSite(SiteSpec(pages=1)) as site:
        batch = make_batch(committed, [site.url])
        (site_id,) = site_ids(committed, batch)
        assert SiteOps.acquire_lease(committed, site_id, "other-worker", 600)
        committed.commit()
        assert analyze_site.apply(args=[site_id]).get() == "not leased"
        assert site.spec.served["/"] == 0


def test_resume_after_crash_never_refetches_stored_pages(app, committed):
    """A worker that died after storing some pages: the next run continues from them."""
    with LocalSite(SiteSpec(pages=6)) as site:
        batch = make_batch(committed, [site.url], max_pages=5)
        (site_id,) = site_ids(committed, batch)
        assert analyze_site.apply(args=[site_id]).get() == "completed"
        first_served = dict(site.spec.served)
        # Simulate a crash after the third record: keep 3 pages, reopen the site, expire lease.
        pages = committed.scalars(sa.select(Page).order_by(Page.seq)).all()
        kept = {p.url for p in pages[:3]}
        committed.execute(sa.delete(Page).where(Page.seq >= 3))
        committed.execute(sa.update(Site).values(status="running", report=None,
                                                 lease_until=sa.func.now(), lease_owner="dead"))
        committed.execute(sa.update(Batch).values(status="running"))
        committed.execute(sa.delete(Comparison))
        committed.commit()
        requeued = requeue_stalled_sites.apply().get()
        assert requeued["sites"] == [site_id]
        assert requeue_stalled_sites.apply().get()["sites"] == []  # one message in flight
        message_id = committed.scalar(sa.select(Site.lease_owner))
        committed.commit()
        site.spec.served.clear()
        assert analyze_site.apply(args=[site_id]).get() == "not leased"  # another message
        assert analyze_site.apply(args=[site_id], task_id=message_id).get() == "completed"
    kept_paths = {urlsplit(url).path for url in kept}
    assert len(kept_paths) == 3
    assert not set(site.spec.served) & kept_paths  # stored pages were not fetched again
    assert first_served["/"] == 1
    urls = committed.scalars(sa.select(Page.url)).all()
    assert len(urls) == len(set(urls)) == 5
    committed.expire_all()
    assert committed.get(Site, site_id).report["pages_crawled"] == 5
    assert committed.get(Batch, batch.id).status == "completed"


def test_cancelled_batch_stops_analysis(app, committed):
    with LocalSite(SiteSpec(pages=2)) as site:
        batch = make_batch(committed, [site.url])
        BatchOps.cancel(committed, committed.get(Batch, batch.id))
        committed.commit()
        assert analyze_site.apply(args=[site_ids(committed, batch)[0]]).get() == "not leased"
    committed.expire_all()
    assert committed.get(Batch, batch.id).status == "cancelled"


def test_batch_deleted_while_crawling_stops_cleanly(app, committed):
    """Deleting a batch under a running crawl ends the task without an error."""
    import threading
    import time

    with LocalSite(SiteSpec(pages=20, delay=0.05)) as site:
        batch = make_batch(committed, [site.url], max_pages=20)
        (site_id,) = site_ids(committed, batch)
        outcome: dict[str, object] = {}
        worker = threading.Thread(
            target=lambda: outcome.update(result=analyze_site.apply(args=[site_id]).get()))
        worker.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            committed.rollback()
            if committed.scalar(sa.select(sa.func.count()).select_from(Page)) >= 2:
                break
            time.sleep(0.05)
        BatchOps.delete(committed, committed.get(Batch, batch.id))
        committed.commit()
        worker.join(60)
    assert outcome["result"] == "lease lost"
    assert committed.scalar(sa.select(sa.func.count()).select_from(Page)) == 0


def test_http_fallback_only_for_a_url_typed_without_scheme(app, committed):
    """"127.0.0.1:port" is tried as https, then http (as browsers do); an explicit
    https:// is what the user asked for, so it fails instead."""
    from utils.batch_input import validate_batch

    with LocalSite(SiteSpec(pages=1)) as site:
        host = urlsplit(site.url).netloc
        checked = validate_batch({"urls": [host, f"https://{host}/explicit"]}, 50)
        assert checked.ok and checked.scheme_guessed == {f"https://{host}/"}
        user = UserFactory()
        batch = BatchOps.create(committed, user.id, "fallback", checked.urls, 2,
                                scheme_guessed=checked.scheme_guessed)
        BatchOps.mark_started(committed, batch.id, 600)
        committed.commit()
        results = [analyze_site.apply(args=[i]).get() for i in site_ids(committed, batch)]
    assert results == ["completed", "failed"]
    committed.expire_all()
    guessed, explicit = committed.scalars(sa.select(Site).order_by(Site.position)).all()
    assert guessed.report["scheme_fallback"]["to"] == f"http://{host}/"
    assert guessed.report["final_url"].startswith("http://")
    assert explicit.error
