"""The XLSX export of a batch (openpyxl, write-only): one sheet per view.

- ``sites``: the CSV's rows (one column per value);
- ``metrics``: the comparison grid, metric by site, with the winners named;
- ``pages``: every fetched page of every site, with its issues and the page linking to it;
- ``issues``: per site, every issue code in plain words with its count.

Text is neutralised against formulas as in the CSV, and characters XML cannot hold dropped.
"""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from analysis.comparison import METRICS_BY_KEY
from analysis.explain import issue_label
from models import Batch, Page, Site
from routes.api_exports import CSV_HEADER, neutralise, site_rows
from routes.api_serializers import pages_body, site_name

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_value(value: Any) -> Any:
    """A cell: numbers and booleans as they are, lists joined, text neutralised."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple):
        value = "; ".join(neutralise(str(item)) for item in value if item is not None)
    else:
        value = neutralise(str(value))
    return ILLEGAL_CHARACTERS_RE.sub("", value)[:32_000]


def _sheet(book: Workbook, title: str, header: list[str], rows: list[list[Any]]) -> None:
    sheet = book.create_sheet(title)
    sheet.append(header)
    for row in rows:
        sheet.append([xlsx_value(value) for value in row])


def xlsx_export(batch: Batch, sites: list[Site], pages: dict[int, list[Page]],
                comparison: dict | None) -> bytes:
    """The workbook's bytes."""
    book = Workbook(write_only=True)
    _sheet(book, "sites", CSV_HEADER, site_rows(batch, sites))
    names = {str(site.id): site_name(site) for site in sites}
    metric_rows = []
    for metric in (comparison or {}).get("metrics") or []:
        values = metric.get("values") or {}
        info = METRICS_BY_KEY.get(metric.get("key"))
        winners = ", ".join(names.get(str(w), str(w)) for w in metric.get("winners") or [])
        metric_rows.append([metric.get("label"), metric.get("better"),
                            *(values.get(str(site.id)) for site in sites),
                            "information only" if info and info.info else winners or "none"])
    _sheet(book, "metrics", ["metric", "better", *(names[str(s.id)] for s in sites), "winners"],
           metric_rows)
    page_rows, issue_rows = [], []
    for site in sites:
        for page in pages_body(pages.get(site.id, [])):
            page_rows.append([site.id, names[str(site.id)], page["url"], page["final_url"],
                              page["status_code"], page["title"], page["response_time_ms"],
                              page["error"], page["linked_from"],
                              [issue_label(code) for code in page["issues"]]])
        report = site.report if isinstance(site.report, dict) else {}
        for issue in report.get("issues") or []:
            if isinstance(issue, dict):
                issue_rows.append([site.id, names[str(site.id)], issue.get("code"),
                                   issue_label(str(issue.get("code"))), issue.get("count")])
    _sheet(book, "pages", ["site_id", "site", "url", "final_url", "status_code", "title",
                           "response_time_ms", "error", "linked_from", "issues"], page_rows)
    _sheet(book, "issues", ["site_id", "site", "code", "issue", "count"], issue_rows)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
