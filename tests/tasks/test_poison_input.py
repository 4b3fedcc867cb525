"""Poison input ends the site, never loops: cleaned text, failed sites with a reason,
capped attempts, and a requeue that never sends a site (or a batch start) twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from models import Batch, BatchEvent, Page, Site
from models.base import utcnow
from tasks.analysis_tasks import analyze_site, requeue_stalled_sites
from tests.conftest import drain_queue
from tests.sites import LocalSite, SiteSpec
from tests.tasks.test_crash_safety import batch_status, submit, wait_for
from tests.tasks.test_pipeline import make_batch, site_ids
from tests.tasks.test_worker_process import start_worker, stop_worker

HOSTILE_HEAD = (
    "<meta name='description' content='Cheap\x00shoes'>"
    '<script type="application/ld+json">{"@context": "https://schema.org", '
    '"@type": "Organization\\u0000X", "name": "\\ud800lone"}</script>'
)


def hostile_site() -> LocalSite:
    spec = SiteSpec(title="Poison\x00Title", pages=1, extra_head=HOSTILE_HEAD)
    site = LocalSite(spec)
    body = ("<!doctype html><html><head><title>Poison\x00Title</title>" + HOSTILE_HEAD +
            "</head><body><h1>Hi\x00</h1><p>Mail sales\x00@poison.test or "
            "<a href='mailto:info%00@poison.test'>us</a></p><a href='/p1'>p1</a>"
            "</body></html>").encode("utf-8", "surrogatepass")
    spec.files["/"] = ("text/html; charset=utf-8", body)
    return site


def test_hostile_page_is_stored_clean_in_one_attempt(app, committed):
    with hostile_site() as site:
        batch = make_batch(committed, [site.url], max_pages=2)
        (site_id,) = site_ids(committed, batch)
        assert analyze_site.apply(args=[site_id]).get() == "completed"
    committed.expire_all()
    stored = committed.get(Site, site_id)
    assert stored.attempts == 1 and stored.status == "completed"
    report = stored.report
    assert "\x00" not in report["title"] and report["title"].startswith("Poison")
    assert "\x00" not in (report["meta_description"] or "")
    assert all("\x00" not in t for t in report["jsonld_types"])
    assert report["jsonld_types"], "the JSON-LD block was analysed"
    assert all("\x00" not in e for e in report["emails"])
    records = committed.scalars(sa.select(Page.record)).all()
    assert all("\\u0000" not in str(r) and "\x00" not in str(r) for r in records)
    assert committed.get(Batch, batch.id).status == "completed"


@pytest.fixture
def refusing_trigger(app, engine, backend):
    """A real database refusal (not retryable) for pages whose URL contains 'refuse-me'."""
    with engine.begin() as connection:
        if backend == "postgresql":
            connection.execute(sa.text(
                "CREATE FUNCTION refuse_page() RETURNS trigger AS $$ BEGIN "
                "IF NEW.url LIKE '%refuse-me%' THEN RAISE EXCEPTION 'page refused' "
                "USING ERRCODE = '22023'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"))
            connection.execute(sa.text(
                "CREATE TRIGGER refuse_page BEFORE INSERT ON pages FOR EACH ROW "
                "EXECUTE FUNCTION refuse_page()"))
        else:
            connection.execute(sa.text(
                "CREATE TRIGGER refuse_page BEFORE INSERT ON pages "
                "WHEN NEW.url LIKE '%refuse-me%' BEGIN SELECT RAISE(ABORT, 'page refused'); "
                "END"))
    yield
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TRIGGER refuse_page" +
                                   (" ON pages" if backend == "postgresql" else "")))
        if backend == "postgresql":
            connection.execute(sa.text("DROP FUNCTION refuse_page()"))


def test_non_retryable_database_error_fails_the_site_and_finishes_the_batch(
        app, committed, refusing_trigger):
    with LocalSite(SiteSpec(pages=1)) as good, LocalSite(SiteSpec(pages=1)) as bad:
        batch = make_batch(committed, [good.url, bad.url + "?refuse-me"], max_pages=2)
        results = [analyze_site.apply(args=[i]).get() for i in site_ids(committed, batch)]
    assert results == ["completed", "failed"]
    committed.expire_all()
    failed = committed.scalar(sa.select(Site).where(Site.status == "failed"))
    assert failed.attempts == 1
    assert "database refused" in failed.error and "page refused" in failed.error
    assert committed.get(Batch, batch.id).status == "partial"
    kinds = committed.scalars(sa.select(BatchEvent.kind).order_by(BatchEvent.id)).all()
    assert kinds[-1] == "batch_finished"


def test_attempts_are_capped_with_the_last_reason(app, committed):
    cap = app.config["SITE_MAX_ATTEMPTS"]
    with LocalSite(SiteSpec(pages=1)) as site:
        batch = make_batch(committed, [site.url])
        (site_id,) = site_ids(committed, batch)
        committed.execute(sa.update(Site).values(
            status="running", attempts=cap, lease_owner="dead-worker",
            lease_until=utcnow() - timedelta(seconds=1), error="database unavailable: boom"))
        committed.commit()
        message_id = _claimed_owner(committed)
        assert analyze_site.apply(args=[site_id], task_id=message_id).get() == "gave up"
        assert site.spec.served["/"] == 0
    committed.expire_all()
    stored = committed.get(Site, site_id)
    assert stored.status == "failed"
    assert stored.error == f"gave up after {cap} attempts: database unavailable: boom"
    assert committed.get(Batch, batch.id).status == "failed"


def _claimed_owner(session) -> str:
    """Run the requeue (what beat does) and return the message id it claimed the site for."""
    claimed = requeue_stalled_sites.apply().get()["sites"]
    assert len(claimed) == 1
    session.rollback()
    return session.scalar(sa.select(Site.lease_owner).where(Site.id == claimed[0]))


def test_requeue_sends_one_message_per_site_per_lease(app, committed):
    with LocalSite(SiteSpec(pages=1)) as site:
        batch = make_batch(committed, [site.url, site.url + "other"])
        drain_queue(app)
        assert requeue_stalled_sites.apply().get() == {"sites": [], "batches": []}
        # A dead worker's lease expires: sent once, then not again within the new lease.
        first, second = site_ids(committed, batch)
        committed.execute(sa.update(Site).where(Site.id == first).values(
            status="running", lease_owner="dead", lease_until=utcnow() - timedelta(seconds=1)))
        # A pending site whose enqueue window passed (its message was lost).
        committed.execute(sa.update(Site).where(Site.id == second).values(
            lease_until=utcnow() - timedelta(seconds=1)))
        committed.commit()
        for _ in range(3):
            requeue_stalled_sites.apply()
        sent = [args for name, args in drain_queue(app) if name == "pipeline.analyze_site"]
        assert sorted(sent) == [[first], [second]]


def test_requeue_restarts_a_lost_batch_start_once_per_window(app, committed):
    with LocalSite(SiteSpec(pages=1)) as site:
        batch_id = submit(committed, [site.url], max_pages=1)
        drain_queue(app)
        assert requeue_stalled_sites.apply().get()["batches"] == []  # still in its window
        committed.execute(sa.update(Batch).values(enqueued_until=utcnow() - timedelta(1)))
        committed.commit()
        results = [requeue_stalled_sites.apply().get()["batches"] for _ in range(3)]
        assert results == [[batch_id], [], []]


def test_hostile_site_ends_on_a_real_worker_with_one_attempt(app, committed, test_settings):
    with hostile_site() as site, LocalSite(SiteSpec(pages=1)) as good:
        worker = start_worker(test_settings)
        try:
            batch_id = submit(committed, [site.url, good.url], max_pages=2)
            wait_for(lambda: batch_status(committed, batch_id) in ("completed", "partial",
                                                                     "failed"),
                     60, "the batch to end", worker)
        finally:
            stop_worker(worker)
    rows = committed.execute(sa.select(Site.status, Site.attempts)).all()
    assert sorted(rows) == [("completed", 1), ("completed", 1)]
