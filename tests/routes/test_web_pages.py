"""Browser pages through the test client: dashboard, new batch, batch page and its status
document, comparison grid and charts, site report, exports, cancel and delete, escaping."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
import sqlalchemy as sa

from models import Batch, Site
from tests.factories import DEFAULT_PASSWORD, BatchFactory, SiteFactory, UserFactory
from tests.routes.api_support import (  # noqa: F401 - empty_queue is an autouse fixture
    drain_queue,
    empty_queue,
    finished_batch,
    sample_report,
)

XSS = "<script>alert(1)</script>"


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


def text_of(response) -> str:
    return response.get_data(as_text=True)


def test_dashboard_lists_own_batches_with_status_and_progress(signed_in, committed, user):
    running = BatchFactory(owner=user, name="Running one", status="running", total_urls=2)
    SiteFactory(batch=running, status="completed")
    SiteFactory(batch=running, status="running")
    BatchFactory(owner=UserFactory(), name="Someone else's")
    committed.commit()
    page = text_of(signed_in.get("/"))
    assert "<title>Your batches · Rivalscope</title>" in page
    assert "Running one" in page and "Someone else" not in page
    assert 'value="50"' in page and 'data-status="running"' in page


def test_empty_dashboard_invites_a_first_batch(signed_in):
    assert "Start your first batch" in text_of(signed_in.get("/"))


def test_new_batch_creates_and_redirects_and_enqueues(app, signed_in, committed, user):
    response = signed_in.post("/batches/new", data={
        "name": "Shoes", "max_pages": "4", "urls": "nike.com\nadidas.com, puma.com\n\n"})
    assert response.status_code == 302
    batch = committed.scalar(sa.select(Batch).where(Batch.user_id == user.id))
    assert response.headers["Location"] == f"/batches/{batch.id}"
    assert batch.name == "Shoes" and batch.max_pages == 4 and batch.total_urls == 3
    assert drain_queue(app) == [("pipeline.start_batch", [batch.id])]


def test_new_batch_errors_name_each_line_and_keep_what_was_typed(app, signed_in, committed):
    typed = "good.example\nftp://files.example, fine.example\n\n<b>bad host</b>\n"
    response = signed_in.post("/batches/new", data={"urls": typed, "max_pages": "5"})
    assert response.status_code == 400
    page = text_of(response)
    lines = re.findall(r'<li data-line="(\d+)">(.*?)</li>', page, re.S)
    assert [number for number, _ in lines] == ["2", "4"]
    assert "ftp://files.example" in lines[0][1] and "unsupported scheme" in lines[0][1]
    assert "&lt;b&gt;bad host&lt;/b&gt;" in lines[1][1]
    textarea = re.search(r"<textarea[^>]*>(.*?)</textarea>", page, re.S).group(1)
    assert html.unescape(textarea).strip("\r\n") == typed.strip("\n")
    assert 'aria-invalid="true"' in page
    assert committed.scalar(sa.select(sa.func.count()).select_from(Batch)) == 0
    assert drain_queue(app) == []


@pytest.mark.parametrize("data, message", [
    ({"urls": "", "max_pages": "5"}, "Enter at least one site."),
    ({"urls": "a.example", "max_pages": "0"}, "Choose from 1 to 200 pages."),
    ({"urls": "a.example", "max_pages": "500"}, "Choose from 1 to 200 pages."),
    ({"urls": ", ,", "max_pages": "5"}, "Enter at least one site."),
])
def test_new_batch_form_errors(signed_in, data, message):
    response = signed_in.post("/batches/new", data=data)
    assert response.status_code == 400
    assert message in text_of(response)


def test_too_many_urls_is_one_message(app, signed_in):
    limit = app.config["MAX_URLS_PER_BATCH"]
    urls = "\n".join(f"s{i}.example" for i in range(limit + 1))
    response = signed_in.post("/batches/new", data={"urls": urls, "max_pages": "5"})
    assert response.status_code == 400
    assert f"at most {limit}" in text_of(response)


def test_batch_page_has_progress_sites_timeline_and_cancel(signed_in, committed, user):
    batch = BatchFactory(owner=user, name="Live", status="running", total_urls=2)
    SiteFactory(batch=batch, status="completed", url="https://a.example/")
    SiteFactory(batch=batch, status="failed", error="HTTP 503", url="https://b.example/")
    committed.commit()
    page = text_of(signed_in.get(f"/batches/{batch.id}"))
    assert "<title>Live · Rivalscope</title>" in page
    assert '<progress id="batch-progress" max="100" value="100"' in page
    assert "HTTP 503" in page and 'id="cancel-button"' in page
    assert 'src="/static/batch.js"' in page
    assert "https://" not in re.sub(r'(href|src)="[^"]*"|https://[ab]\.example/', "", page)


def test_status_document_for_polling(signed_in, committed, user):
    batch = BatchFactory(owner=user, status="running", total_urls=2)
    SiteFactory(batch=batch, status="completed")
    SiteFactory(batch=batch, status="running")
    committed.commit()
    doc = signed_in.get(f"/batches/{batch.id}/status.json").get_json()
    assert doc["progress"] == 50 and doc["finished"] is False
    assert [s["status"] for s in doc["sites"]] == ["completed", "running"]
    assert doc["links"]["comparison"] is None


def test_status_document_sends_only_new_events(signed_in, committed, user):
    signed_in.post("/batches/new", data={"urls": "a.example", "max_pages": "2"})
    batch = committed.scalar(sa.select(Batch).where(Batch.user_id == user.id))
    first = signed_in.get(f"/batches/{batch.id}/status.json").get_json()
    assert [e["kind"] for e in first["events"]] == ["batch_created"]
    after = first["events"][-1]["id"]
    signed_in.post(f"/batches/{batch.id}/cancel")
    later = signed_in.get(f"/batches/{batch.id}/status.json?after={after}").get_json()
    assert [e["kind"] for e in later["events"]] == ["batch_cancelled"]
    assert later["finished"] is True and later["status"] == "cancelled"


def test_other_users_pages_are_404(signed_in, committed):
    theirs = finished_batch(committed, UserFactory(), [sample_report()])
    site_id = committed.scalar(sa.select(Site.id).where(Site.batch_id == theirs.id))
    for path in (f"/batches/{theirs.id}", f"/batches/{theirs.id}/status.json",
                 f"/batches/{theirs.id}/comparison", f"/batches/{theirs.id}/export.csv",
                 f"/batches/{theirs.id}/export.json", f"/sites/{site_id}",
                 f"/batches/{2**40}"):
        assert signed_in.get(path).status_code == 404, path
    assert signed_in.post(f"/batches/{theirs.id}/cancel").status_code == 404
    assert signed_in.post(f"/batches/{theirs.id}/delete").status_code == 404


def test_comparison_grid_marks_winners_and_tells_na_from_zero(signed_in, committed, user):
    batch = finished_batch(committed, user, [
        sample_report("A", word_count=900, images_missing_alt=0),
        sample_report("B", word_count=100, images_missing_alt=3),
        None,
    ], name="Rivals")
    page = text_of(signed_in.get(f"/batches/{batch.id}/comparison"))
    assert "<title>Comparison: Rivals · Rivalscope</title>" in page
    row = re.search(r'<tr data-metric="images_missing_alt">(.*?)</tr>', page, re.S).group(1)
    cells = re.findall(r'<td class="([^"]*)">(.*?)</td>', row, re.S)
    classes = [c.strip() for c, _ in cells]
    texts = [re.sub(r"<[^>]+>", "", t).replace("★", "").replace("Best:", "").strip()
             for _, t in cells]
    assert texts == ["none", "3", "n/a"]  # checked and absent is "none"; n/a: not measured
    assert classes == ["winner", "", "na"]
    words = re.search(r'<tr data-metric="word_count">(.*?)</tr>', page, re.S).group(1)
    assert words.count('class="winner"') == 1 and "900" in words
    assert '<svg class="chart"' in page and 'id="overall-chart"' in page
    assert 'id="scores-chart"' in page and page.count("<rect") >= 2 * 5
    assert "Gaps" in page and "Strengths" in page
    assert f'href="/batches/{batch.id}/export.csv"' in page


def test_comparison_of_unfinished_batch_redirects_to_the_batch(signed_in, committed, user):
    batch = BatchFactory(owner=user, status="running", total_urls=1)
    committed.commit()
    response = signed_in.get(f"/batches/{batch.id}/comparison")
    assert response.status_code == 302 and response.headers["Location"] == f"/batches/{batch.id}"


def test_site_report_shows_every_field_and_pages(signed_in, committed, user):
    report = sample_report("Alpha", open_graph={"og:title": "Alpha OG"},
                           jsonld_types=["Organization"], canonical="https://alpha.example/",
                           social_profiles={"github": "https://github.com/alpha"},
                           redirect_chain=[{"url": "http://alpha.example/", "status": 301}])
    batch = finished_batch(committed, user, [report])
    site = committed.scalar(sa.select(Site).where(Site.batch_id == batch.id))
    page = text_of(signed_in.get(f"/sites/{site.id}"))
    assert "<title>Report: Alpha · Rivalscope</title>" in page  # the name its title gives
    for label in ("Final URL", "Status code", "Redirects", "Response time", "Page size",
                  "HTTPS", "Security headers", "Title", "Meta description", "Canonical",
                  "Language", "Mobile viewport", "H1 headings", "H2 headings", "Open Graph",
                  "JSON-LD types", "Words", "Internal links", "External links", "Images",
                  "Images without alt", "Technologies", "robots.txt", "Crawl delay",
                  "Sitemap", "E-mail addresses", "Social profiles", "Issues over"):
        assert label in page, label
    for value in ("Alpha OG", "Organization", "301 http://alpha.example/", "nginx",
                  "hi@example.test", "https://github.com/alpha", "Missing meta description"):
        assert value in page, value
    pages = re.search(r'<table id="pages-table"[^>]*>(.*?)</table>', page, re.S).group(1)
    assert "homepage" in pages and "Missing meta description" in pages
    assert "missing_description" not in page.replace('data-code="missing_description"', "")


def test_crawled_text_is_escaped_everywhere(signed_in, committed, user):
    report = sample_report(XSS, canonical="javascript:alert(2)", h1=[XSS],
                           open_graph={"og:title": '"><img src=x onerror=alert(3)>'})
    batch = finished_batch(committed, user, [report, sample_report("B")], name=XSS)
    site = committed.scalar(sa.select(Site).where(Site.batch_id == batch.id,
                                                  Site.position == 0))
    committed.execute(sa.update(Site).where(Site.id == site.id)
                      .values(url="https://x.example/<svg onload=alert(4)>"))
    committed.commit()
    for path in ("/", f"/batches/{batch.id}", f"/batches/{batch.id}/comparison",
                 f"/sites/{site.id}"):
        page = text_of(signed_in.get(path))
        assert "<script>alert" not in page and "<img src=x" not in page, path
        assert "<svg onload" not in page, path
        assert 'href="javascript:' not in page, path
    site_page = text_of(signed_in.get(f"/sites/{site.id}"))
    assert html.escape(XSS, quote=False) in site_page


def test_web_exports_download_with_the_session(signed_in, committed, user):
    batch = finished_batch(committed, user, [sample_report("A, \"B\"\nC")])
    response = signed_in.get(f"/batches/{batch.id}/export.csv")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True), newline="")))
    assert rows[0]["title"] == "A, \"B\"\nC"
    body = signed_in.get(f"/batches/{batch.id}/export.json").get_json()
    assert body["batch"]["id"] == batch.id


def test_cancel_and_delete_from_the_page(signed_in, committed, user):
    batch = BatchFactory(owner=user, status="running", total_urls=1)
    SiteFactory(batch=batch, status="running")
    committed.commit()
    batch_id = batch.id
    assert signed_in.post(f"/batches/{batch_id}/cancel").status_code == 302
    committed.expire_all()
    assert committed.get(Batch, batch_id).status == "cancelled"
    assert "was cancelled" in text_of(signed_in.get(f"/batches/{batch_id}"))
    # Delete asks first: without the confirmation it leads to the question, deletes nothing.
    asked = signed_in.post(f"/batches/{batch_id}/delete")
    assert asked.status_code == 302 and asked.headers["Location"].endswith("/delete")
    question = text_of(signed_in.get(f"/batches/{batch_id}/delete"))
    assert "cannot be undone" in question and 'name="confirm" value="yes"' in question
    committed.expire_all()
    assert committed.get(Batch, batch_id) is not None
    done = signed_in.post(f"/batches/{batch_id}/delete", data={"confirm": "yes"})
    assert done.status_code == 302
    committed.expire_all()
    assert committed.scalar(sa.select(Batch).where(Batch.id == batch_id)) is None


def test_forms_render_labels_and_no_stray_attributes(signed_in):
    for path in ("/batches/new", "/account"):
        page = text_of(signed_in.get(path))
        assert '="None"' not in page, path
        for field_id in re.findall(r'<(?:input|textarea)[^>]*\bid="([^"]+)"', page):
            if field_id != "csrf_token":
                assert f'<label for="{field_id}"' in page, (path, field_id)
    error_page = text_of(signed_in.post("/batches/new", data={"urls": "", "max_pages": "5"}))
    assert re.search(r'<textarea[^>]*aria-describedby="urls-error"[^>]*aria-invalid="true"',
                     error_page)
