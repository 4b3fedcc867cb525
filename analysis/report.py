"""Build a site report (DESIGN.md API contract ``report``) from the crawl's page records.

- Homepage facts come from the record with ``is_homepage=True`` (its final response).
- ``pages_crawled``: distinct pages (by final URL) whose record is ``analysed``.
- ``emails`` (unique, sorted), ``social_profiles`` (first profile per network in crawl order)
  and ``issues`` gather over those pages.
- ``issues`` lists ``{code, count}`` for every code whose count is above zero, in this order:
  missing_title, missing_description, duplicate_title (pages whose title another page shares),
  missing_h1, multiple_h1, images_missing_alt (images, summed over pages), broken_link
  (distinct non-homepage record URLs answering 4xx/5xx), slow_page (response over 1000 ms).
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from analysis.html_facts import SECURITY_HEADERS

SLOW_PAGE_MS = 1000
ISSUE_CODES = (
    "missing_title",
    "missing_description",
    "duplicate_title",
    "missing_h1",
    "multiple_h1",
    "images_missing_alt",
    "broken_link",
    "slow_page",
    "parse_budget_exceeded",
)
REPORT_KEYS = (
    "final_url", "status_code", "redirect_chain", "response_time_ms", "page_bytes", "https",
    "security_headers", "title", "meta_description", "canonical", "lang", "has_viewport", "h1",
    "h2_count", "word_count", "internal_links", "external_links", "images",
    "images_missing_alt", "open_graph", "jsonld_types", "technologies", "robots", "sitemap",
    "emails", "social_profiles", "pages_crawled", "issues",
)
_FACT_DEFAULTS: dict[str, Any] = {
    "title": None,
    "meta_description": None,
    "canonical": None,
    "lang": None,
    "has_viewport": False,
    "h1": [],
    "h2_count": 0,
    "word_count": 0,
    "internal_links": 0,
    "external_links": 0,
    "images": 0,
    "images_missing_alt": 0,
    "open_graph": {},
    "jsonld_types": [],
    "technologies": [],
}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _facts(record: dict) -> dict:
    facts = record.get("facts")
    return facts if isinstance(facts, dict) else {}


def analysed_pages(records: list[dict]) -> list[dict]:
    """Analysed records, one per distinct final URL (the first in crawl order)."""
    pages, seen = [], set()
    for record in records:
        if not isinstance(record, dict) or not record.get("analysed"):
            continue
        key = record.get("final_url") or record.get("url")
        if key in seen:
            continue
        seen.add(key)
        pages.append(record)
    return pages


def _homepage(records: list[dict]) -> dict:
    for record in records:
        if isinstance(record, dict) and record.get("is_homepage"):
            return record
    return {}


def normalize_robots(robots: dict | None) -> dict:
    """robots facts with every key present (missing robots.txt -> found false, 0, null, [])."""
    robots = robots if isinstance(robots, dict) else {}
    delay = robots.get("crawl_delay")
    return {
        "found": bool(robots.get("found", False)),
        "disallow_count": _int(robots.get("disallow_count")),
        "crawl_delay": delay if isinstance(delay, int | float) and not isinstance(delay, bool)
        else None,
        "sitemaps": [s for s in robots.get("sitemaps") or [] if isinstance(s, str)],
    }


def normalize_sitemap(sitemap: dict | None) -> dict:
    """sitemap facts with both keys present."""
    sitemap = sitemap if isinstance(sitemap, dict) else {}
    return {"found": bool(sitemap.get("found", False)), "url_count": _int(sitemap.get("url_count"))}


def count_issues(records: list[dict], pages: list[dict]) -> list[dict]:
    """``[{code, count}]`` with counts above zero, in ISSUE_CODES order."""
    counts: Counter[str] = Counter()
    titles = Counter(t for t in (_facts(p).get("title") for p in pages) if isinstance(t, str))
    for page in pages:
        facts = _facts(page)
        h1 = facts.get("h1") if isinstance(facts.get("h1"), list) else []
        counts["missing_title"] += facts.get("title") is None
        counts["missing_description"] += facts.get("meta_description") is None
        title = facts.get("title")
        counts["duplicate_title"] += isinstance(title, str) and titles[title] > 1
        counts["missing_h1"] += not h1
        counts["multiple_h1"] += len(h1) > 1
        counts["images_missing_alt"] += _int(facts.get("images_missing_alt"))
        counts["slow_page"] += _int(page.get("response_time_ms")) > SLOW_PAGE_MS
    broken = {
        r.get("url")
        for r in records
        if isinstance(r, dict)
        and not r.get("is_homepage")
        and 400 <= _int(r.get("status_code")) <= 599
    }
    counts["broken_link"] = len(broken)
    counts["parse_budget_exceeded"] = len({
        r.get("url") for r in records
        if isinstance(r, dict) and str(r.get("error") or "").startswith("parse_budget_exceeded")
    })
    return [{"code": code, "count": counts[code]} for code in ISSUE_CODES if counts[code] > 0]


def _gather_contacts(pages: list[dict]) -> tuple[list[str], dict[str, str]]:
    emails: set[str] = set()
    profiles: dict[str, str] = {}
    for page in pages:
        facts = _facts(page)
        emails.update(e.lower() for e in facts.get("emails") or [] if isinstance(e, str))
        found = facts.get("social_profiles")
        for network, url in (found.items() if isinstance(found, dict) else ()):
            profiles.setdefault(network, url)
    return sorted(emails), profiles


def build_report(records: list[dict], robots: dict | None, sitemap: dict | None) -> dict:
    """The site report (exactly REPORT_KEYS) from records in crawl order plus robots/sitemap."""
    records = [r for r in records or [] if isinstance(r, dict)]
    home = _homepage(records)
    facts = _facts(home)
    pages = analysed_pages(records)
    emails, profiles = _gather_contacts(pages)
    final_url = home.get("final_url") or home.get("url")
    headers = facts.get("security_headers")
    headers = headers if isinstance(headers, dict) else {}
    report: dict[str, Any] = {
        "final_url": final_url,
        "status_code": home.get("status_code"),
        "redirect_chain": list(home.get("redirect_chain") or []),
        "response_time_ms": home.get("response_time_ms"),
        "page_bytes": home.get("page_bytes"),
        "https": isinstance(final_url, str) and final_url.lower().startswith("https://"),
        "security_headers": {name: bool(headers.get(name, False)) for name in SECURITY_HEADERS},
    }
    for key, default in _FACT_DEFAULTS.items():
        value = facts.get(key, default)
        report[key] = value if value is not None or default is None else default
    report["robots"] = normalize_robots(robots)
    report["sitemap"] = normalize_sitemap(sitemap)
    report["emails"] = emails
    report["social_profiles"] = profiles
    report["pages_crawled"] = len(pages)
    report["issues"] = count_issues(records, pages)
    result = {key: report[key] for key in REPORT_KEYS}
    if isinstance(home.get("scheme_fallback"), dict):  # only when it happened
        result["scheme_fallback"] = home["scheme_fallback"]
    return result


NAME_SEPARATORS = (" | ", " - ", " – ", " — ")
MAX_NAME_LENGTH = 80


def display_name(report: dict | None, url: str) -> str:
    """A site's name: ``og:site_name``, else the ``<title>`` cut at its first separator
    (" | ", " - ", " – "), else the host (and port) of ``url`` (``www.`` dropped)."""
    report = report if isinstance(report, dict) else {}
    graph = report.get("open_graph")
    name = graph.get("og:site_name") if isinstance(graph, dict) else None
    if not (isinstance(name, str) and name.strip()):
        title = report.get("title")
        name = title if isinstance(title, str) else ""
        cuts = [name.find(sep) for sep in NAME_SEPARATORS if name.find(sep) > 0]
        if cuts:
            name = name[: min(cuts)]
    name = " ".join(str(name).split())
    if not name:
        parts = urlsplit(url or "")
        host = parts.netloc.rsplit("@", 1)[-1].lower() or (url or "")
        name = host.removeprefix("www.")
    return name[:MAX_NAME_LENGTH]
