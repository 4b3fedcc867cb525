"""CSV (RFC 4180, via the csv module) and JSON exports of a batch, one row per site.

Text that came from crawled sites and starts like a spreadsheet formula (= + - @, tab or CR)
is prefixed with an apostrophe so opening the CSV never runs it.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from models import Batch, Page, Site
from routes.api_serializers import batch_body, pages_body

SCORE_KEYS = ("seo", "performance", "security", "content", "overall")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# (column, value from the report)
REPORT_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("final_url", lambda r: r.get("final_url")),
    ("status_code", lambda r: r.get("status_code")),
    ("redirects", lambda r: " ".join(f"{hop.get('status')} {hop.get('url')}"
                                     for hop in r.get("redirect_chain") or [])),
    ("response_time_ms", lambda r: r.get("response_time_ms")),
    ("page_bytes", lambda r: r.get("page_bytes")),
    ("https", lambda r: r.get("https")),
    ("security_headers", lambda r: [name for name, present
                                    in (r.get("security_headers") or {}).items() if present]),
    ("title", lambda r: r.get("title")),
    ("meta_description", lambda r: r.get("meta_description")),
    ("canonical", lambda r: r.get("canonical")),
    ("lang", lambda r: r.get("lang")),
    ("has_viewport", lambda r: r.get("has_viewport")),
    ("h1", lambda r: r.get("h1")),
    ("h2_count", lambda r: r.get("h2_count")),
    ("word_count", lambda r: r.get("word_count")),
    ("internal_links", lambda r: r.get("internal_links")),
    ("external_links", lambda r: r.get("external_links")),
    ("images", lambda r: r.get("images")),
    ("images_missing_alt", lambda r: r.get("images_missing_alt")),
    ("open_graph", lambda r: r.get("open_graph")),
    ("jsonld_types", lambda r: r.get("jsonld_types")),
    ("technologies", lambda r: r.get("technologies")),
    ("robots_found", lambda r: (r.get("robots") or {}).get("found")),
    ("robots_disallow_count", lambda r: (r.get("robots") or {}).get("disallow_count")),
    ("robots_crawl_delay", lambda r: (r.get("robots") or {}).get("crawl_delay")),
    ("robots_sitemaps", lambda r: (r.get("robots") or {}).get("sitemaps")),
    ("sitemap_found", lambda r: (r.get("sitemap") or {}).get("found")),
    ("sitemap_url_count", lambda r: (r.get("sitemap") or {}).get("url_count")),
    ("emails", lambda r: r.get("emails")),
    ("social_profiles", lambda r: r.get("social_profiles")),
    ("pages_crawled", lambda r: r.get("pages_crawled")),
    ("issues", lambda r: [f"{i.get('code')}={i.get('count')}" for i in r.get("issues") or []
                          if isinstance(i, dict)]),
)
CSV_HEADER = ["batch_id", "batch_name", "site_id", "url", "status", "error",
              *(f"score_{key}" for key in SCORE_KEYS), *(name for name, _ in REPORT_COLUMNS)]


def cell(value: Any) -> str | int | float:
    """One CSV cell: numbers as they are, booleans as true/false, lists joined with "; ",
    objects as JSON, null as empty; formula-like text neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    if isinstance(value, list):
        value = "; ".join(str(item) for item in value)
    elif isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _safe(getter: Any, report: dict) -> Any:
    try:
        return getter(report)
    except (AttributeError, TypeError):  # a report with unexpected shapes: leave the cell empty
        return None


def csv_export(batch: Batch, sites: list[Site]) -> str:
    """The batch as CSV text (CRLF line ends, fields quoted when needed: RFC 4180)."""
    out = io.StringIO()
    writer = csv.writer(out, dialect="excel", lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for site in sites:
        report = site.report if isinstance(site.report, dict) else {}
        scores = site.scores if isinstance(site.scores, dict) else {}
        row = [batch.id, batch.name, site.id, site.url, site.status, site.error,
               *(scores.get(key) for key in SCORE_KEYS),
               *(_safe(getter, report) for _, getter in REPORT_COLUMNS)]
        writer.writerow([cell(value) for value in row])
    return out.getvalue()


def json_export(batch: Batch, progress: int, sites: list[Site],
                pages: dict[int, list[Page]], comparison: dict | None) -> dict[str, Any]:
    """The batch, every site with report, scores and pages, and the comparison (or null)."""
    return {
        "batch": batch_body(batch, progress, sites),
        "sites": [{
            "id": site.id,
            "url": site.url,
            "status": site.status,
            "error": site.error,
            "scores": site.scores,
            "report": site.report,
            "pages": pages_body(pages.get(site.id, [])),
        } for site in sites],
        "comparison": comparison,
    }


def export_filename(batch: Batch, extension: str) -> str:
    return f"rivalscope-batch-{batch.id}.{extension}"
