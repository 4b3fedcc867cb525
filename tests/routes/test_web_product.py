"""What a marketer sees: the signed-out home page, error pages in the layout, "your site" in
the form and the comparison, names and renaming, the score breakdown, plain-language issues
and failures, cancelled sites, the timeline telling each failure once."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from models import BatchEvent, Site
from tests.factories import DEFAULT_PASSWORD, BatchFactory, PageFactory, SiteFactory, UserFactory
from tests.routes.api_support import (  # noqa: F401 - empty_queue is an autouse fixture
    empty_queue,
    finished_batch,
    sample_report,
)
from tests.routes.test_web_pages import text_of


@pytest.fixture
def user(committed):
    user = UserFactory(email="me@example.test")
    committed.commit()
    return user


@pytest.fixture
def signed_in(client, user):
    assert client.post("/login", data={"email": user.email,
                                       "password": DEFAULT_PASSWORD}).status_code == 302
    return client


def test_signed_out_home_explains_the_product(client):
    page = text_of(client.get("/"))
    assert "beats your competitors" in page
    assert '<svg class="chart example-chart"' in page
    assert re.search(r'<a class="button" href="/signup"[^>]*>Sign up', page)


@pytest.mark.parametrize(("method", "path", "status"), [
    ("get", "/no/such/page", 404), ("put", "/batches/new", 405), ("get", "/admin", 403),
    ("post", "/batches/1/delete", 400)])
def test_error_pages_use_the_site_layout(app, signed_in, committed, user, method, path,
                                         status):
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        if path.endswith("/delete"):
            path = f"/batches/{BatchFactory(owner=user).id}/delete"
            committed.commit()
        response = getattr(signed_in, method)(path)
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert response.status_code == status
    page = text_of(response)
    assert 'class="site-header"' in page and 'href="/batches/new"' in page  # the navigation
    assert f"<h1>{status} · " in page


def test_a_500_page_uses_the_layout_too(app):
    from routes.errors import error_page

    with app.test_request_context("/"):
        page = error_page(500, "internal error", "An internal error occurred.")
    assert 'class="site-header"' in page and "<h1>500 · Internal error</h1>" in page


def test_new_batch_marks_your_site(signed_in, committed, user):
    response = signed_in.post("/batches/new", data={
        "urls": "a.example\nb.example", "own_url": "B.example", "max_pages": "3"})
    assert response.status_code == 302
    sites = committed.scalars(sa.select(Site).order_by(Site.position)).all()
    assert [s.is_own for s in sites] == [False, True]
    page = text_of(signed_in.get(response.headers["Location"]))
    assert "your site" in page and "2 sites" in page and "up to 3 pages" in page


def test_new_batch_refuses_an_own_site_not_in_the_list(signed_in, committed):
    response = signed_in.post("/batches/new", data={
        "urls": "a.example", "own_url": "c.example", "max_pages": "3"})
    assert response.status_code == 400
    assert "Enter one of the sites listed above" in text_of(response)
    assert committed.scalar(sa.select(sa.func.count()).select_from(Site)) == 0


def test_comparison_is_framed_around_your_site(signed_in, committed, user):
    batch = finished_batch(committed, user, [
        sample_report("Rival | Shop", word_count=900),
        sample_report("Mine - Home", https=False, word_count=100)])
    sites = committed.scalars(sa.select(Site).where(Site.batch_id == batch.id)
                              .order_by(Site.position)).all()
    sites[1].is_own = True
    committed.commit()
    page = text_of(signed_in.get(f"/batches/{batch.id}/comparison"))
    assert "your site, Mine" in page
    head = re.search(r"<thead>(.*?)</thead>", page, re.S).group(1)
    assert head.index("Mine") < head.index("Rival")  # your site first
    https = re.search(r'<tr data-metric="https"[^>]*>(.*?)</tr>', page, re.S).group(0)
    assert 'data-standing="trail"' in https and "You trail" in https
    crawled = re.search(r'<tr data-metric="pages_crawled"[^>]*>(.*?)</tr>', page, re.S).group(1)
    assert "(information)" in crawled and "winner" not in crawled
    own_card = re.search(rf'<article class="card card-own"[^>]*data-site-id="{sites[1].id}"'
                         r'(.*?)</article>', page, re.S).group(1)
    gaps = re.search(r'<ol class="ranked gaps">(.*?)</ol>', own_card, re.S).group(1)
    assert gaps.index("Not served over HTTPS") < gaps.index("Words on the homepage")
    assert "40 Security points" in gaps
    rival = re.search(rf'data-site-id="{sites[0].id}"(.*?)</article>', page, re.S).group(1)
    assert "Served over HTTPS" in re.search(r'<ol class="ranked strengths">(.*?)</ol>',
                                            rival, re.S).group(1)


def test_site_page_breakdown_names_and_rename(signed_in, committed, user):
    report = sample_report("Acme | Shoes", https=False,
                           security_headers={"strict-transport-security": True})
    batch = finished_batch(committed, user, [report])
    site = committed.scalar(sa.select(Site).where(Site.batch_id == batch.id))
    page = text_of(signed_in.get(f"/sites/{site.id}"))
    assert "<title>Report: Acme · Rivalscope</title>" in page
    assert 'href="#breakdown-security"' in page and 'id="breakdown"' in page
    hsts = re.search(r'<tr data-rule="security.strict-transport-security"[^>]*>(.*?)</tr>',
                     page, re.S).group(1)
    assert "0 of 10" in hsts and "10 missed" in hsts and "plain HTTP" in hsts
    assert "Serve the site over HTTPS" in hsts
    security = re.search(r'<h3 id="breakdown-security">Security: (\d+) of 100', page).group(1)
    assert int(security) == site.scores["security"]
    renamed = signed_in.post(f"/sites/{site.id}/rename", data={"name": "Acme Running"})
    assert renamed.status_code == 302
    assert "<title>Report: Acme Running" in text_of(signed_in.get(f"/sites/{site.id}"))
    assert "Acme Running" in text_of(signed_in.get(f"/batches/{batch.id}/comparison"))
    signed_in.post(f"/sites/{site.id}/rename", data={"name": ""})
    assert "<title>Report: Acme ·" in text_of(signed_in.get(f"/sites/{site.id}"))
    other = SiteFactory(batch=BatchFactory(owner=UserFactory()))
    committed.commit()
    assert signed_in.post(f"/sites/{other.id}/rename", data={"name": "x"}).status_code == 404


def test_broken_link_shows_the_page_linking_to_it(signed_in, committed, user):
    batch = finished_batch(committed, user, [sample_report("A")])
    site = committed.scalar(sa.select(Site).where(Site.batch_id == batch.id))
    PageFactory(site_id=site.id, url="https://site0.example/gone", status_code=404,
                analysed=False, is_homepage=False, record={
                    "url": "https://site0.example/gone", "status_code": 404,
                    "analysed": False, "is_homepage": False, "error": "HTTP 404",
                    "linked_from": "https://site0.example/shop"})
    committed.commit()
    page = text_of(signed_in.get(f"/sites/{site.id}"))
    row = re.search(r"<tr>\s*<th scope=\"row\" class=\"url\"><a href=\"https://site0.example/"
                    r"gone\".*?</tr>", page, re.S).group(0)
    assert "Broken internal link" in row and "linked from" in row
    assert "https://site0.example/shop" in row


def test_failed_site_reads_plainly_with_the_detail_one_click_away(signed_in, committed, user):
    batch = BatchFactory(owner=user, status="partial", total_urls=2)
    site = SiteFactory(batch=batch, status="failed", url="http://127.0.0.1:9/",
                       error="network error: [Errno 111] Connection refused")
    SiteFactory(batch=batch, status="completed")
    committed.flush()
    reason = "network error: [Errno 111] Connection refused"
    committed.add_all([
        BatchEvent(batch_id=batch.id, site_id=site.id, kind="fetch_failed",
                   message=f"Fetch failed: {site.url} ({reason})",
                   data={"url": site.url, "error": reason}),
        BatchEvent(batch_id=batch.id, site_id=site.id, kind="site_failed",
                   message=f"Failed {site.url}: {reason}", data={"reason": reason})])
    committed.commit()
    page = text_of(signed_in.get(f"/batches/{batch.id}"))
    cell = re.search(rf'<tr data-site-id="{site.id}">(.*?)</tr>', page, re.S).group(1)
    assert "The site refused the connection" in cell
    assert "<summary>Technical detail</summary>" in cell and "Errno 111" in cell
    timeline = re.search(r'<ol id="timeline".*?</ol>', page, re.S).group(0)
    assert timeline.count("<li") == 1  # the failure is told once
    assert "Failed http://127.0.0.1:9/: The site refused the connection" in timeline
    assert 'class="local-time"' in timeline and " UTC</time>" in timeline
    site_page = text_of(signed_in.get(f"/sites/{site.id}"))
    assert "Analysis failed: <span class=\"reason\">The site refused the connection" in site_page


def test_cancelled_sites_read_cancelled_and_progress_counts_finished_ones(signed_in,
                                                                          committed, user):
    batch = BatchFactory(owner=user, status="running", total_urls=4)
    SiteFactory(batch=batch, status="completed")
    for _ in range(3):
        SiteFactory(batch=batch, status="pending")
    committed.commit()
    signed_in.post(f"/batches/{batch.id}/cancel")
    doc = signed_in.get(f"/batches/{batch.id}/status.json").get_json()
    assert doc["status"] == "cancelled" and doc["progress"] == 25
    assert [s["status"] for s in doc["sites"]] == ["completed"] + ["cancelled"] * 3
    page = text_of(signed_in.get(f"/batches/{batch.id}"))
    assert "25%" in page and 'data-status="cancelled"' in page
    assert "4 sites" in page


def test_timeline_plurals_are_right(signed_in, committed, user):
    batch = BatchFactory(owner=user, status="completed", total_urls=1)
    site = SiteFactory(batch=batch, status="completed")
    committed.flush()
    committed.add_all([
        BatchEvent(batch_id=batch.id, kind="batch_started", message="Analysis started for 1 sites"),
        BatchEvent(batch_id=batch.id, site_id=site.id, kind="site_completed",
                   message=f"Analysed {site.url}: 1 pages", data={"pages": 1}),
        BatchEvent(batch_id=batch.id, site_id=site.id, kind="pages_fetched",
                   message="11 pages analysed")])
    committed.commit()
    timeline = re.search(r'<ol id="timeline".*?</ol>',
                         text_of(signed_in.get(f"/batches/{batch.id}")), re.S).group(0)
    assert "Analysis started for 1 site<" in timeline and ": 1 page<" in timeline
    assert "11 pages analysed" in timeline
    assert "1 site ·" in text_of(signed_in.get(f"/batches/{batch.id}"))


def test_web_exports_offer_excel_csv_and_xlsx(signed_in, committed, user):
    batch = finished_batch(committed, user, [sample_report("Café")])
    page = text_of(signed_in.get(f"/batches/{batch.id}/comparison"))
    assert f'href="/batches/{batch.id}/export.csv?excel=1"' in page
    assert f'href="/batches/{batch.id}/export.xlsx"' in page
    excel = signed_in.get(f"/batches/{batch.id}/export.csv?excel=1")
    assert excel.data.startswith(b"\xef\xbb\xbf") and "Café" in excel.data.decode("utf-8-sig")
    xlsx = signed_in.get(f"/batches/{batch.id}/export.xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"  # a zip: the workbook
