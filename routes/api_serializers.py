"""JSON shapes of the API contract (DESIGN.md "API contract (v1)"), shared with the pages."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from analysis.comparison import standing
from analysis.report import display_name
from models import Batch, BatchEvent, Page, Site

SLOW_PAGE_MS = 1000


def iso(value: datetime | None) -> str | None:
    """RFC 3339 timestamp (UTC) or None."""
    return value.isoformat() if value is not None else None


def site_summary(site: Site) -> dict[str, Any]:
    return {"id": site.id, "url": site.url, "status": site.status, "error": site.error}


def own_site_id(sites: list[Site]) -> int | None:
    """The id of the batch's own site ("your site"), or None."""
    return next((site.id for site in sites if getattr(site, "is_own", False)), None)


def site_name(site: Site) -> str:
    """The name the user gave the site, else the one its pages give (``display_name``)."""
    given = getattr(site, "display_name", None)
    return given or display_name(getattr(site, "report", None), site.url)


def batch_body(batch: Batch, progress: int, sites: list[Site] | None = None) -> dict[str, Any]:
    """A batch with its sites (``urls``)."""
    sites = batch.sites if sites is None else sites
    return {
        "id": batch.id,
        "name": batch.name,
        "status": batch.status,
        "progress": progress,
        "total_urls": batch.total_urls,
        "max_pages": batch.max_pages,
        "urls": [site_summary(site) for site in sites],
        "own_site_id": own_site_id(sites),
        "created_at": iso(batch.created_at),
        "started_at": iso(batch.started_at),
        "finished_at": iso(batch.finished_at),
    }


def event_body(event: BatchEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "kind": event.kind,
        "message": event.message,
        "site_id": event.site_id,
        "data": event.data,
        "created_at": iso(event.created_at),
    }


def _facts(record: dict) -> dict:
    facts = record.get("facts")
    return facts if isinstance(facts, dict) else {}


def page_issues(records: list[dict], titles: Counter | None = None) -> list[list[str]]:
    """Issue codes of each page record, using the report's codes (DESIGN.md ``issues``).
    ``titles`` counts the site's titles when ``records`` are only a window of its pages."""
    if titles is None:
        titles = Counter(_facts(r).get("title") for r in records
                         if r.get("analysed") and isinstance(_facts(r).get("title"), str))
    result = []
    for record in records:
        codes: list[str] = []
        status = record.get("status_code")
        if isinstance(status, int) and 400 <= status <= 599 and not record.get("is_homepage"):
            codes.append("broken_link")
        if str(record.get("error") or "").startswith("parse_budget_exceeded"):
            codes.append("parse_budget_exceeded")
        if record.get("analysed"):
            facts = _facts(record)
            h1 = facts.get("h1") if isinstance(facts.get("h1"), list) else []
            title = facts.get("title")
            if title is None:
                codes.append("missing_title")
            if facts.get("meta_description") is None:
                codes.append("missing_description")
            if isinstance(title, str) and titles[title] > 1:
                codes.append("duplicate_title")
            if not h1:
                codes.append("missing_h1")
            if len(h1) > 1:
                codes.append("multiple_h1")
            if (facts.get("images_missing_alt") or 0) > 0:
                codes.append("images_missing_alt")
            if (record.get("response_time_ms") or 0) > SLOW_PAGE_MS:
                codes.append("slow_page")
        result.append(codes)
    return result


def pages_body(pages: list[Page], titles: Counter | None = None) -> list[dict[str, Any]]:
    """Fetched pages of a site, in crawl order, with their own issues."""
    records = [page.record if isinstance(page.record, dict) else {} for page in pages]
    issues = page_issues(records, titles)
    body = []
    for page, record, codes in zip(pages, records, issues, strict=True):
        facts = _facts(record)
        body.append({
            "url": page.url,
            "final_url": page.final_url,
            "status_code": page.status_code,
            "analysed": page.analysed,
            "is_homepage": page.is_homepage,
            "title": facts.get("title") if isinstance(facts.get("title"), str) else None,
            "response_time_ms": record.get("response_time_ms"),
            "error": record.get("error"),
            "linked_from": record.get("linked_from"),
            "issues": codes,
            "truncated": bool(getattr(page, "truncated", False)),
        })
    return body


def site_body(site: Site, pages: list[Page]) -> dict[str, Any]:
    """A site with its report (null until analysed), scores and crawled pages."""
    return {
        "id": site.id,
        "batch_id": site.batch_id,
        "url": site.url,
        "name": site_name(site),
        "is_own": bool(site.is_own),
        "status": site.status,
        "error": site.error,
        "report": site.report,
        "scores": site.scores,
        "pages": pages_body(pages),
    }


def comparison_body(data: dict[str, Any], sites: list[Site]) -> dict[str, Any]:
    """The stored comparison for the API, framed around the own site when there is one:
    ``own_site_id``, and ``standing`` {metric key: lead | tie | trail | null}."""
    own = own_site_id(sites)
    return {
        "metrics": data.get("metrics", []),
        "scores": data.get("scores", {}),
        "gaps": data.get("gaps", {}),
        "gap_details": data.get("gap_details", {}),
        "strengths": data.get("strengths", {}),
        "names": {str(site.id): site_name(site) for site in sites},
        "own_site_id": own,
        "standing": standing(data, own) if own is not None else {},
    }
