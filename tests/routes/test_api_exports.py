"""CSV (RFC 4180) and JSON exports through the API."""

from __future__ import annotations

import csv
import io

import sqlalchemy as sa

from models import Site
from tests.routes.api_support import (  # noqa: F401 - empty_queue is an autouse fixture
    empty_queue,
    finished_batch,
    sample_report,
    user_with_token,
)
from tests.routes.test_api_tokens import assert_error

TRICKY_TITLE = 'Acme, "Best" shoes\nsecond line'


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_csv_is_rfc4180_and_round_trips_comma_quote_and_newline(client, committed):
    user, headers = user_with_token(committed)
    batch = finished_batch(committed, user, [
        sample_report(TRICKY_TITLE, h1=["One; two", "Three"]),
        sample_report("=HYPERLINK(\"http://evil.example\")"),
        None,
    ], name='Q3, "rivals"')
    response = client.get(f"/api/v1/batches/{batch.id}/export.csv", headers=headers)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="rivalscope-batch-{batch.id}.csv"')
    text = response.get_data(as_text=True)
    # RFC 4180: CRLF record ends, quotes doubled inside a quoted field.
    assert text.endswith("\r\n")
    assert '"Acme, ""Best"" shoes\nsecond line"' in text
    rows = parse_csv(text)
    assert len(rows) == 3
    assert rows[0]["title"] == TRICKY_TITLE
    assert rows[0]["batch_name"] == 'Q3, "rivals"'
    assert rows[0]["h1"] == "One; two; Three"
    assert rows[0]["https"] == "true" and rows[0]["word_count"] == "300"
    # A cell that a spreadsheet would run as a formula is neutralised.
    assert rows[1]["title"] == "'=HYPERLINK(\"http://evil.example\")"
    # A failed site: its values are empty (not available), not 0.
    assert rows[2]["status"] == "failed" and rows[2]["error"] == "HTTP 500"
    assert rows[2]["score_overall"] == "" and rows[2]["word_count"] == ""
    assert rows[0]["score_overall"].isdigit()
    sites = committed.scalars(sa.select(Site).where(Site.batch_id == batch.id)
                              .order_by(Site.position)).all()
    assert [r["site_id"] for r in rows] == [str(s.id) for s in sites]


def test_json_export_has_batch_sites_reports_pages_and_comparison(client, committed):
    user, headers = user_with_token(committed)
    batch = finished_batch(committed, user, [sample_report("A"), None])
    response = client.get(f"/api/v1/batches/{batch.id}/export.json", headers=headers)
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.get_json()
    assert set(body) == {"batch", "sites", "comparison"}
    assert body["batch"]["id"] == batch.id and body["batch"]["status"] == "partial"
    assert [s["status"] for s in body["sites"]] == ["completed", "failed"]
    assert body["sites"][0]["report"]["title"] == "A"
    assert body["sites"][1]["report"] is None and body["sites"][1]["scores"] is None
    assert body["sites"][0]["pages"][0]["is_homepage"] is True
    assert set(body["comparison"]) == {"metrics", "scores", "gaps"}


def test_exports_of_an_unfinished_batch_have_its_sites_without_reports(client, committed):
    _user, headers = user_with_token(committed)
    created = client.post("/api/v1/batches", json={"urls": ["a.example", "b.example"]},
                          headers=headers).get_json()
    rows = parse_csv(client.get(f"/api/v1/batches/{created['id']}/export.csv",
                                headers=headers).get_data(as_text=True))
    assert [(r["url"], r["status"], r["title"]) for r in rows] == [
        ("https://a.example/", "pending", ""), ("https://b.example/", "pending", "")]
    body = client.get(f"/api/v1/batches/{created['id']}/export.json", headers=headers).get_json()
    assert body["comparison"] is None


def test_exports_need_a_token(client, committed):
    user, _headers = user_with_token(committed)
    batch = finished_batch(committed, user, [sample_report()])
    for suffix in ("csv", "json"):
        assert_error(client.get(f"/api/v1/batches/{batch.id}/export.{suffix}"), 401)
