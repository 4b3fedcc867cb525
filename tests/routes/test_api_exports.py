"""CSV (RFC 4180, one column per value), Excel CSV (BOM), XLSX and JSON exports."""

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
    assert {"metrics", "scores", "gaps", "gap_details", "strengths"} <= set(body["comparison"])
    assert body["sites"][0]["name"] == "A"


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


def test_csv_has_one_column_per_value_and_no_json(client, committed):
    user, headers = user_with_token(committed)
    report = sample_report(
        "Shop", social_profiles={"linkedin": "https://linkedin.com/company/x",
                                 "twitter": "https://x.com/x"},
        open_graph={"og:title": "Shop", "og:site_name": "Shop Inc"},
        security_headers={"strict-transport-security": True, "x-frame-options": True,
                          "content-security-policy": False},
        emails=["=cmd@x.example", "-a@x.example", "ok@x.example"],
        issues=[{"code": "broken_link", "count": 2}, {"code": "slow_page", "count": 1}])
    batch = finished_batch(committed, user, [report])
    text = client.get(f"/api/v1/batches/{batch.id}/export.csv",
                      headers=headers).get_data(as_text=True)
    assert not text.startswith("\ufeff")  # the plain CSV has no byte order mark
    row = parse_csv(text)[0]
    assert row["social_linkedin"] == "https://linkedin.com/company/x"
    assert row["social_facebook"] == ""
    assert row["header_strict-transport-security"] == "true"
    assert row["header_content-security-policy"] == "false"
    assert row["og_site_name"] == "Shop Inc" and row["name"] == "Shop Inc"
    assert row["issue_broken_link"] == "2" and row["issue_missing_title"] == "0"
    # every element of a list cell is neutralised, not only the first
    assert row["emails"] == "'=cmd@x.example; '-a@x.example; ok@x.example"
    assert not any(value.startswith(("{", "[")) for value in row.values())


def test_excel_csv_has_a_bom_and_the_same_rows(client, committed):
    user, headers = user_with_token(committed)
    batch = finished_batch(committed, user, [sample_report("Café Zürich")])
    plain = client.get(f"/api/v1/batches/{batch.id}/export.csv", headers=headers)
    excel = client.get(f"/api/v1/batches/{batch.id}/export.csv?excel=1", headers=headers)
    assert excel.status_code == 200
    assert excel.data.startswith(b"\xef\xbb\xbf")
    assert excel.data[3:] == plain.data
    assert "excel.csv" in excel.headers["Content-Disposition"]
    assert_error(client.get(f"/api/v1/batches/{batch.id}/export.csv?excel=2",
                            headers=headers), 400)


def test_xlsx_has_sites_metrics_pages_and_issues_sheets(client, committed):
    from openpyxl import load_workbook

    user, headers = user_with_token(committed)
    batch = finished_batch(committed, user, [
        sample_report("=SUM(A1)", issues=[{"code": "missing_description", "count": 3}]),
        sample_report("B"), None])
    response = client.get(f"/api/v1/batches/{batch.id}/export.xlsx", headers=headers)
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    book = load_workbook(io.BytesIO(response.data))
    assert book.sheetnames == ["sites", "metrics", "pages", "issues"]
    sites = list(book["sites"].values)
    assert sites[0][:5] == ("batch_id", "batch_name", "site_id", "url", "name")
    assert len(sites) == 4
    title_col = sites[0].index("title")
    assert sites[1][title_col] == "'=SUM(A1)"  # text, never a formula
    metrics = list(book["metrics"].values)
    assert metrics[0][0] == "metric" and metrics[0][-1] == "winners"
    crawled = next(row for row in metrics if row[0] == "Pages crawled")
    assert crawled[-1] == "information only"
    pages = list(book["pages"].values)
    assert pages[0][:3] == ("site_id", "site", "url") and len(pages) == 3
    issues = list(book["issues"].values)
    assert ("missing_description", "Missing meta description", 3) in [r[2:] for r in issues]
    assert_error(client.get(f"/api/v1/batches/{batch.id}/export.xlsx"), 401)
