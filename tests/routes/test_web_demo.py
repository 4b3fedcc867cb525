"""The offline demo: bundled sites served on 127.0.0.1, analysed by the real pipeline, and
the ``flask demo`` command."""

from __future__ import annotations

import httpx
import jsonschema_rs
import pytest
import sqlalchemy as sa

from models import Batch, Comparison, Site, User
from routes.openapi import openapi_document
from tasks.analysis_tasks import analyze_site
from tasks.demo import DEMO_EMAIL, loopback_allowed, serve_demo_sites
from tests.routes.api_support import (  # noqa: F401 - empty_queue is an autouse fixture
    drain_queue,
    empty_queue,
    user_with_token,
)
from utils.db_operations import BatchOps


@pytest.fixture
def demo_sites():
    sites = serve_demo_sites()
    yield sites
    for site in sites:
        site.stop()


def test_demo_sites_are_served_with_their_headers_and_real_origin(demo_sites):
    assert [s.name for s in demo_sites] == ["basecamp", "summitgear", "trailpeak"]
    trailpeak = demo_sites[2]
    assert trailpeak.url.startswith("http://127.0.0.1:")
    home = httpx.get(trailpeak.url, timeout=5)
    assert home.status_code == 200 and home.headers["x-frame-options"] == "DENY"
    robots = httpx.get(trailpeak.url + "robots.txt", timeout=5).text
    assert f"Sitemap: {trailpeak.url}sitemap.xml" in robots
    sitemap = httpx.get(trailpeak.url + "sitemap.xml", timeout=5).text
    assert f"<loc>{trailpeak.url}shoes.html</loc>" in sitemap
    assert httpx.get(trailpeak.url + "_headers", timeout=5).status_code == 404


def test_loopback_needs_to_be_allowed():
    assert loopback_allowed("127.0.0.0/8") and loopback_allowed("10.0.0.0/8,127.0.0.0/8")
    assert not loopback_allowed("") and not loopback_allowed("10.0.0.0/8")


def test_the_pipeline_tells_the_demo_sites_apart(app, client, committed, demo_sites):
    user, headers = user_with_token(committed)
    batch = BatchOps.create(committed, user.id, "demo", [s.url for s in demo_sites], 10)
    BatchOps.mark_started(committed, batch.id, 600)
    committed.commit()
    site_ids = committed.scalars(sa.select(Site.id).where(Site.batch_id == batch.id)
                                 .order_by(Site.position)).all()
    assert [analyze_site.apply(args=[i]).get() for i in site_ids] == ["completed"] * 3
    committed.expire_all()
    assert committed.get(Batch, batch.id).status == "completed"
    basecamp, summit, trail = (committed.get(Site, i).report for i in site_ids)
    assert trail["sitemap"] == {"found": True, "url_count": 5}
    assert trail["emails"] == ["hello@trailpeak.example"]
    assert sum(trail["security_headers"].values()) == 5
    assert "WordPress" in summit["technologies"]
    assert {"code": "broken_link", "count": 1} in summit["issues"]
    assert basecamp["robots"]["found"] is False and basecamp["images_missing_alt"] == 3
    data = committed.scalar(sa.select(Comparison.data).where(Comparison.batch_id == batch.id))
    overall = next(m for m in data["metrics"] if m["key"] == "score_overall")
    assert overall["winners"] == [str(site_ids[2])]
    assert data["gaps"][str(site_ids[0])]
    # Reports made by the real pipeline conform to the OpenAPI document.
    components = openapi_document()["components"]
    for name, path in [("Site", f"/api/v1/sites/{site_ids[1]}"),
                       ("Comparison", f"/api/v1/batches/{batch.id}/comparison"),
                       ("Export", f"/api/v1/batches/{batch.id}/export.json")]:
        body = client.get(path, headers=headers).get_json()
        jsonschema_rs.Draft202012Validator(
            {"$ref": f"#/components/schemas/{name}", "components": components},
            validate_formats=True).validate(body)


def test_flask_demo_serves_submits_and_stops(app, runner, committed):
    result = runner.invoke(args=["demo", "--serve-seconds", "0.5", "--max-pages", "3"])
    assert result.exit_code == 0, result.output
    assert result.output.count("Serving demo site") == 3
    user = committed.scalar(sa.select(User).where(User.email == DEMO_EMAIL))
    batch = committed.scalar(sa.select(Batch).where(Batch.user_id == user.id))
    assert batch.total_urls == 3 and batch.max_pages == 3
    assert f"Submitted batch {batch.id}" in result.output
    assert drain_queue(app) == [("pipeline.start_batch", [batch.id])]
    again = runner.invoke(args=["demo", "--serve-seconds", "0.1"])
    assert "existing demo user" in again.output
    assert committed.scalar(sa.select(sa.func.count()).select_from(User)) == 1


def test_demo_warns_only_when_the_worker_refuses_loopback(app, runner, committed,
                                                          monkeypatch):
    """The demo does not guess from its own environment (the worker's may differ): no
    warning at submission; the note comes once the worker reports a refused address."""
    from tasks.demo import LOOPBACK_NOTE, DemoWatch
    from tests.factories import BatchFactory, SiteFactory

    monkeypatch.setitem(app.config, "FETCH_ALLOW_NETWORKS", "")
    result = runner.invoke(args=["demo", "--serve-seconds", "0.3", "--max-pages", "1"])
    assert result.exit_code == 0, result.output
    assert "must allow loopback" not in result.output
    drain_queue(app)
    batch = BatchFactory(status="running", total_urls=2)
    SiteFactory(batch=batch, status="completed")
    site = SiteFactory(batch=batch, status="running")
    committed.commit()
    watch = DemoWatch(batch.id)
    with app.app_context():
        assert watch.notes() == []
    site.status, site.error = "failed", "blocked address 127.0.0.1 (loopback)"
    batch.status = "partial"
    committed.commit()
    with app.app_context():
        notes = watch.notes()
        assert notes[0] == LOOPBACK_NOTE and "finished: partial" in notes[1]
        assert watch.notes() == []  # each said once
