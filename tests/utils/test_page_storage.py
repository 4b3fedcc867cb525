"""Page records are bounded when stored, and a site's pages are read one window at a time
(API and site page), with site-wide duplicate titles still flagged."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from models import Page
from tests.factories import DEFAULT_PASSWORD, BatchFactory, PageFactory, SiteFactory
from tests.routes.api_support import user_with_token
from utils.db_operations import PageOps
from utils.operations.pages import MAX_RECORD_BYTES, bounded_record


def record(url: str, title: str = "T", **facts) -> dict:
    return {"url": url, "final_url": url, "status_code": 200, "analysed": True,
            "is_homepage": False, "error": None, "response_time_ms": 5,
            "facts": {"title": title, "meta_description": "d", "h1": ["h"],
                      "internal_links": 100_000, "external_links": 7, "images": 3, **facts}}


def huge_record() -> dict:
    links = [f"https://site.example/{'x' * 200}/{i}" for i in range(1000)]
    emails = [f"user{i}@example.test" for i in range(50_000)]
    return record("https://site.example/big", links=links, emails=emails,
                  h1=["heading " * 50] * 2000, links_total=100_000)


def json_size(value) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode())


def test_small_records_are_kept_whole():
    small = record("https://site.example/")
    assert bounded_record(small) == (small, False)


def test_big_records_are_cut_to_the_bound_and_keep_their_counts():
    big = huge_record()
    assert json_size(big) > 4 * MAX_RECORD_BYTES
    cut, truncated = bounded_record(big)
    assert truncated and cut["truncated"] is True
    assert json_size(cut) <= MAX_RECORD_BYTES
    for key in ("internal_links", "external_links", "images", "links_total", "title"):
        assert cut["facts"][key] == big["facts"][key]
    assert cut["facts"]["links"] == big["facts"]["links"][: len(cut["facts"]["links"])]
    assert big["facts"]["emails"][:3] == ["user0@example.test", "user1@example.test",
                                          "user2@example.test"]  # the input is not changed


def test_store_flags_a_cut_record(db_session):
    site = SiteFactory()
    PageOps.store(db_session, site.id, huge_record(), 0)
    PageOps.store(db_session, site.id, record("https://site.example/small"), 1)
    rows = db_session.execute(sa.select(Page.url, Page.truncated, Page.record)
                              .order_by(Page.seq)).all()
    assert [(url, truncated) for url, truncated, _ in rows] == [
        ("https://site.example/big", True), ("https://site.example/small", False)]
    assert json_size(rows[0].record) <= MAX_RECORD_BYTES


@pytest.fixture
def big_site(committed):
    user, headers = user_with_token(committed)
    site = SiteFactory(batch=BatchFactory(owner=user), status="completed")
    for i in range(120):
        title = "Same title" if i in (3, 117) else f"Page {i}"
        PageFactory(site_id=site.id, seq=i, url=f"https://site.example/p{i}",
                    analysed=True, record=record(f"https://site.example/p{i}", title))
    committed.commit()
    return user, headers, site


def test_api_site_pages_come_in_windows(client, big_site):
    _user, headers, site = big_site
    first = client.get(f"/api/v1/sites/{site.id}", headers=headers).get_json()
    assert len(first["pages"]) == 50 and first["pages"][0]["url"] == "https://site.example/p0"
    assert (first["pages_total"], first["pages_page"], first["pages_next"]) == (120, 1, 2)
    last = client.get(f"/api/v1/sites/{site.id}?page=3", headers=headers).get_json()
    assert [p["url"] for p in last["pages"]][-1] == "https://site.example/p119"
    assert len(last["pages"]) == 20 and last["pages_next"] is None
    # a title shared with a page of another window is still a duplicate
    p117 = next(p for p in last["pages"] if p["url"].endswith("/p117"))
    assert "duplicate_title" in p117["issues"]
    small = client.get(f"/api/v1/sites/{site.id}?page=2&per_page=100", headers=headers)
    assert len(small.get_json()["pages"]) == 20


@pytest.mark.parametrize("query", ["page=0", "page=x", "per_page=0", "per_page=5000"])
def test_api_rejects_bad_page_arguments(client, big_site, query):
    _user, headers, site = big_site
    response = client.get(f"/api/v1/sites/{site.id}?{query}", headers=headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"].startswith("invalid_")


def test_site_page_shows_one_window_with_a_pager(client, big_site):
    user, _headers, site = big_site
    assert client.post("/login", data={"email": user.email,
                                       "password": DEFAULT_PASSWORD}).status_code == 302
    page = client.get(f"/sites/{site.id}?page=2").get_data(as_text=True)
    assert "Pages fetched (120)" in page and "Page 2 of 3" in page
    assert "https://site.example/p50" in page and "https://site.example/p49<" not in page
    assert f"/sites/{site.id}?page=3" in page and f"/sites/{site.id}?page=1" in page
    assert client.get(f"/sites/{site.id}?page=junk").status_code == 200


def test_another_users_site_is_404(client, big_site, committed):
    _user, headers, site = big_site
    _other, other_headers = user_with_token(committed, email="other@example.test")
    assert client.get(f"/api/v1/sites/{site.id}", headers=other_headers).status_code == 404
