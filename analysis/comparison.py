"""Side-by-side comparison of site reports: metric winners, scores and each site's gaps.

``compare({site_id: report or None})`` returns
``{"metrics": [{key, label, better, values, winners}], "scores": {...}, "gaps": {...}}``.

- A site whose report is None (failed) has None ("not available") for every value and score.
  None never wins and is not 0: winners are chosen among the values that exist, so 0 can win a
  "lower" metric. Every site holding the best value wins (ties give several winners); a metric
  where nobody has a value has no winners.
- Gaps name what a site lacks that at least one rival (another site with a report) has, with
  how many of those rivals have it. Failed sites have no gaps listed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from analysis.contacts import NETWORKS
from analysis.html_facts import SECURITY_HEADERS
from analysis.scoring import score_report


def _num(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and math.isfinite(value):
        return value
    return None


def _length(value: Any) -> int | None:
    return len(value) if isinstance(value, list | dict) else None


def _sub(report: dict, key: str) -> dict:
    value = report.get(key)
    return value if isinstance(value, dict) else {}


def _issue_total(report: dict, code: str | None = None) -> int | None:
    issues = report.get("issues")
    if not isinstance(issues, list):
        return None
    total = 0
    for issue in issues:
        if isinstance(issue, dict) and (code is None or issue.get("code") == code):
            total += _num(issue.get("count")) or 0
    return total


def _security_count(report: dict) -> int | None:
    headers = report.get("security_headers")
    if not isinstance(headers, dict):
        return None
    return sum(1 for name in SECURITY_HEADERS if headers.get(name) is True)


def _sitemap_urls(report: dict) -> int | None:
    sitemap = report.get("sitemap")
    return _num(sitemap.get("url_count")) if isinstance(sitemap, dict) else None


Extractor = Callable[[dict, dict], Any]

# (key, label, better, extractor(report, scores) -> value or None)
METRICS: tuple[tuple[str, str, str, Extractor], ...] = (
    ("score_overall", "Overall score", "higher", lambda r, s: s.get("overall")),
    ("score_seo", "SEO score", "higher", lambda r, s: s.get("seo")),
    ("score_performance", "Performance score", "higher", lambda r, s: s.get("performance")),
    ("score_security", "Security score", "higher", lambda r, s: s.get("security")),
    ("score_content", "Content score", "higher", lambda r, s: s.get("content")),
    ("response_time_ms", "Homepage response time (ms)", "lower",
     lambda r, s: _num(r.get("response_time_ms"))),
    ("page_bytes", "Homepage size (bytes)", "lower", lambda r, s: _num(r.get("page_bytes"))),
    ("redirects", "Redirects before the homepage", "lower",
     lambda r, s: _length(r.get("redirect_chain"))),
    ("https", "Served over HTTPS", "higher",
     lambda r, s: r.get("https") if isinstance(r.get("https"), bool) else None),
    ("security_headers", "Security headers present (of 6)", "higher",
     lambda r, s: _security_count(r)),
    ("has_viewport", "Mobile viewport", "higher",
     lambda r, s: r.get("has_viewport") if isinstance(r.get("has_viewport"), bool) else None),
    ("word_count", "Words on the homepage", "higher", lambda r, s: _num(r.get("word_count"))),
    ("h2_count", "H2 headings on the homepage", "higher", lambda r, s: _num(r.get("h2_count"))),
    ("internal_links", "Internal links on the homepage", "higher",
     lambda r, s: _num(r.get("internal_links"))),
    ("images_missing_alt", "Homepage images without alt", "lower",
     lambda r, s: _num(r.get("images_missing_alt"))),
    ("jsonld_types", "JSON-LD types", "higher", lambda r, s: _length(r.get("jsonld_types"))),
    ("sitemap_urls", "URLs in sitemaps", "higher", lambda r, s: _sitemap_urls(r)),
    ("pages_crawled", "Pages crawled", "higher", lambda r, s: _num(r.get("pages_crawled"))),
    ("emails", "Public e-mail addresses", "higher", lambda r, s: _length(r.get("emails"))),
    ("social_profiles", "Social profiles", "higher",
     lambda r, s: _length(r.get("social_profiles"))),
    ("broken_links", "Broken internal links", "lower",
     lambda r, s: _issue_total(r, "broken_link")),
    ("issues", "Issues over crawled pages", "lower", lambda r, s: _issue_total(r)),
)

_HEADER_NAMES = {
    "strict-transport-security": "Strict-Transport-Security",
    "content-security-policy": "Content-Security-Policy",
    "x-frame-options": "X-Frame-Options",
    "x-content-type-options": "X-Content-Type-Options",
    "referrer-policy": "Referrer-Policy",
    "permissions-policy": "Permissions-Policy",
}
_NETWORK_NAMES = {
    "twitter": "X (Twitter)", "linkedin": "LinkedIn", "facebook": "Facebook",
    "instagram": "Instagram", "youtube": "YouTube", "github": "GitHub", "tiktok": "TikTok",
}


def _header_check(name: str) -> Callable[[dict], bool]:
    return lambda r: _sub(r, "security_headers").get(name) is True


def _network_check(network: str) -> Callable[[dict], bool]:
    return lambda r: bool(_sub(r, "social_profiles").get(network))


# (what the site lacks, has-it check)
FEATURES: tuple[tuple[str, Callable[[dict], bool]], ...] = (
    ("Not served over HTTPS", lambda r: r.get("https") is True),
    *((f"No {_HEADER_NAMES[h]} header", _header_check(h)) for h in SECURITY_HEADERS),
    ("No page title", lambda r: bool(r.get("title"))),
    ("No meta description", lambda r: bool(r.get("meta_description"))),
    ("No canonical link", lambda r: bool(r.get("canonical"))),
    ("No mobile viewport meta tag", lambda r: r.get("has_viewport") is True),
    ("No lang attribute on <html>", lambda r: bool(r.get("lang"))),
    ("No <h1> heading", lambda r: bool(r.get("h1"))),
    ("No Open Graph tags", lambda r: bool(_sub(r, "open_graph"))),
    ("No JSON-LD structured data", lambda r: bool(r.get("jsonld_types"))),
    ("No robots.txt", lambda r: _sub(r, "robots").get("found") is True),
    ("No sitemap", lambda r: _sub(r, "sitemap").get("found") is True),
    ("No public e-mail address", lambda r: bool(r.get("emails"))),
    *((f"No {_NETWORK_NAMES[n]} profile link", _network_check(n)) for n in NETWORKS),
)


def pick_winners(values: dict[str, Any], better: str) -> list[str]:
    """Site ids holding the best value; None never wins; ties all win; no values -> []."""
    present = {sid: v for sid, v in values.items() if v is not None}
    if not present:
        return []
    best = max(present.values()) if better == "higher" else min(present.values())
    return [sid for sid, v in present.items() if v == best]


def site_gaps(site_id: str, reports: dict[str, dict]) -> list[str]:
    """What ``site_id`` lacks that at least one rival with a report has."""
    own = reports[site_id]
    rivals = [r for sid, r in reports.items() if sid != site_id]
    gaps = []
    for text, has in FEATURES:
        if has(own):
            continue
        holders = sum(1 for r in rivals if has(r))
        if holders:
            gaps.append(f"{text} ({holders} of {len(rivals)} rivals have it)")
    return gaps


def compare(reports: dict[str, dict | None]) -> dict:
    """Rank every metric across sites, with scores and per-site gaps (see module docstring)."""
    ids = [str(sid) for sid in reports]
    usable = {str(sid): r for sid, r in reports.items() if isinstance(r, dict)}
    scores: dict[str, dict | None] = {
        sid: score_report(usable[sid]) if sid in usable else None for sid in ids
    }
    metrics = []
    for key, label, better, extract in METRICS:
        values = {
            sid: extract(usable[sid], scores[sid]) if sid in usable else None for sid in ids
        }
        metrics.append(
            {
                "key": key,
                "label": label,
                "better": better,
                "values": values,
                "winners": pick_winners(values, better),
            }
        )
    gaps = {sid: site_gaps(sid, usable) if sid in usable else [] for sid in ids}
    return {"metrics": metrics, "scores": scores, "gaps": gaps}
