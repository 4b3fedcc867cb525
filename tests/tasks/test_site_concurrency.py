"""FETCH_PER_ORIGIN through the pipeline: one site's crawl keeps that many requests in
flight, stores the same pages in the same order as a one-at-a-time crawl, and never fetches
while its task holds a transaction (the strict network guard is on in tests)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from models import Page
from tasks.analysis_tasks import analyze_site
from tasks.crawl_tools import build_crawl_tools
from tests.sites import LocalSite, SiteSpec
from tests.tasks.test_pipeline import make_batch, site_ids


def crawl_with(app, committed, monkeypatch, per_origin: int) -> tuple[list[tuple], int]:
    """Crawl a fresh 12-page site with FETCH_PER_ORIGIN=per_origin; its stored pages (seq,
    url path, analysed) and the most requests the server answered at once."""
    monkeypatch.setitem(app.config, "FETCH_PER_ORIGIN", per_origin)
    # the worker's fetcher and gate are built once per process: build this test's own
    monkeypatch.setattr(analyze_site.app, "crawl_tools", build_crawl_tools(app.config),
                        raising=False)
    spec = SiteSpec(title="Wide", pages=12, delay=0.1)
    with LocalSite(spec) as site:
        batch = make_batch(committed, [site.url], max_pages=10)
        (site_id,) = site_ids(committed, batch)
        assert analyze_site.apply(args=[site_id]).get() == "completed"
    origin = site.url.rstrip("/")
    pages = [(seq, url.removeprefix(origin), analysed) for seq, url, analysed in
             committed.execute(sa.select(Page.seq, Page.url, Page.analysed)
                               .where(Page.site_id == site_id).order_by(Page.seq))]
    assert max(spec.served.values()) == 1  # nothing asked for twice
    return pages, spec.peak_in_flight


@pytest.mark.parametrize("per_origin", [3])
def test_fetch_per_origin_keeps_that_many_requests_in_flight(app, committed, monkeypatch,
                                                             per_origin):
    sequential, sequential_peak = crawl_with(app, committed, monkeypatch, 1)
    parallel, parallel_peak = crawl_with(app, committed, monkeypatch, per_origin)
    assert sequential_peak == 1
    assert parallel_peak == per_origin  # used, and never passed
    assert parallel == sequential  # same pages, same order, same seq numbers
    assert sum(analysed for _, _, analysed in parallel) == 10
