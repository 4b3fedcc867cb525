"""CSV (RFC 4180, via the csv module), Excel CSV (the same with a UTF-8 BOM) and JSON exports
of a batch, one row per site and one column per value (no JSON inside a cell). The XLSX
workbook is in ``routes.api_xlsx``.

Text that came from crawled sites and starts like a spreadsheet formula (= + - @, tab or CR)
is prefixed with an apostrophe so opening the CSV never runs it; in a list cell, every
element is.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from analysis.contacts import NETWORKS
from analysis.html_facts import SECURITY_HEADERS
from analysis.report import ISSUE_CODES
from models import Batch, Page, Site
from routes.api_serializers import batch_body, pages_body, site_name

SCORE_KEYS = ("seo", "performance", "security", "content", "overall")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
OG_PROPERTIES = ("og:title", "og:description", "og:image", "og:type", "og:url", "og:site_name")


def _sub(report: dict, key: str) -> dict:
    value = report.get(key)
    return value if isinstance(value, dict) else {}


def _issue(code: str) -> Any:
    def count(r: dict) -> int:
        return sum(i.get("count") or 0 for i in r.get("issues") or []
                   if isinstance(i, dict) and i.get("code") == code)
    return count


# (column, value from the report): one value per column, never a JSON object.
REPORT_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("final_url", lambda r: r.get("final_url")),
    ("status_code", lambda r: r.get("status_code")),
    ("redirects", lambda r: len(r.get("redirect_chain") or [])),
    ("redirect_chain", lambda r: [f"{hop.get('status')} {hop.get('url')}"
                                  for hop in r.get("redirect_chain") or []]),
    ("response_time_ms", lambda r: r.get("response_time_ms")),
    ("page_bytes", lambda r: r.get("page_bytes")),
    ("https", lambda r: r.get("https")),
    *((f"header_{name}", (lambda n: lambda r: _sub(r, "security_headers").get(n))(name))
      for name in SECURITY_HEADERS),
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
    *((prop.replace(":", "_"), (lambda p: lambda r: _sub(r, "open_graph").get(p))(prop))
      for prop in OG_PROPERTIES),
    ("jsonld_types", lambda r: r.get("jsonld_types")),
    ("technologies", lambda r: r.get("technologies")),
    ("robots_found", lambda r: _sub(r, "robots").get("found")),
    ("robots_disallow_count", lambda r: _sub(r, "robots").get("disallow_count")),
    ("robots_crawl_delay", lambda r: _sub(r, "robots").get("crawl_delay")),
    ("robots_sitemaps", lambda r: _sub(r, "robots").get("sitemaps")),
    ("sitemap_found", lambda r: _sub(r, "sitemap").get("found")),
    ("sitemap_url_count", lambda r: _sub(r, "sitemap").get("url_count")),
    ("emails", lambda r: r.get("emails")),
    *((f"social_{network}", (lambda n: lambda r: _sub(r, "social_profiles").get(n))(network))
      for network in NETWORKS),
    ("pages_crawled", lambda r: r.get("pages_crawled")),
    *((f"issue_{code}", _issue(code)) for code in ISSUE_CODES),
)
CSV_HEADER = ["batch_id", "batch_name", "site_id", "url", "name", "is_own", "status", "error",
              *(f"score_{key}" for key in SCORE_KEYS), *(name for name, _ in REPORT_COLUMNS)]


def neutralise(text: str) -> str:
    """Text that starts like a spreadsheet formula gets an apostrophe in front."""
    return "'" + text if text.startswith(FORMULA_START) else text


def cell(value: Any) -> str | int | float:
    """One CSV cell: numbers as they are, booleans as true/false, null as empty, lists joined
    with "; " with every element neutralised against formulas, text neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    if isinstance(value, list | tuple):
        return "; ".join(neutralise(str(item)) for item in value if item is not None)
    if isinstance(value, dict):  # not expected: every column holds one value
        return "; ".join(neutralise(f"{k}={v}") for k, v in sorted(value.items()))
    return neutralise(str(value))


def _safe(getter: Any, report: dict) -> Any:
    try:
        return getter(report)
    except (AttributeError, TypeError):  # a report with unexpected shapes: leave the cell empty
        return None


def site_rows(batch: Batch, sites: list[Site]) -> list[list[Any]]:
    """One row of raw values per site, in CSV_HEADER order."""
    rows = []
    for site in sites:
        report = site.report if isinstance(site.report, dict) else {}
        scores = site.scores if isinstance(site.scores, dict) else {}
        rows.append([batch.id, batch.name, site.id, site.url, site_name(site),
                     bool(site.is_own), site.status, site.error,
                     *(scores.get(key) for key in SCORE_KEYS),
                     *(_safe(getter, report) for _, getter in REPORT_COLUMNS)])
    return rows


def csv_export(batch: Batch, sites: list[Site], *, excel: bool = False) -> str:
    """The batch as CSV text (CRLF line ends, fields quoted when needed: RFC 4180).
    ``excel``: the same with a UTF-8 byte order mark, which Excel needs to read UTF-8."""
    out = io.StringIO()
    if excel:
        out.write("\ufeff")
    writer = csv.writer(out, dialect="excel", lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in site_rows(batch, sites):
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
            "name": site_name(site),
            "is_own": bool(site.is_own),
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
