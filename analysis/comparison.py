"""Side-by-side comparison of site reports: metric winners, scores, gaps and strengths.

``compare({site_id: report or None})`` returns ``{"metrics": [{key, label, better, values,
winners}], "scores": {...}, "gaps": {...}, "gap_details": {...}, "strengths": {...}}``.

- A site whose report is None (failed) has None ("not available") for every value and score.
  None never wins and is not 0: winners are chosen among the values that exist, so 0 can win a
  "lower" metric.
- The winner rule: a winner holds the best value of its row, and that value is a good one
  (``Metric.good``): a boolean row where nobody has the good value, or a count row where
  everybody has none, has no winner. Ties give several winners. Informational rows (pages
  crawled: it follows ``max_pages`` and the site's size) never have winners.
- Gaps come from the scoring rules (``analysis.scoring.RULES``): what a site misses that at
  least one rival earns, worth the points the best rival earns over it, ranked by those
  points; then profile links on networks the rivals use (worth no points). Strengths: rules
  where the site earns more than every rival, ranked by its lead over the rivals' mean.
  ``gaps`` holds the same gaps as plain text. Failed sites have no gaps and no strengths.
- ``standing(comparison, own_id)`` frames a comparison around one site ("your site"): for
  every row, whether it leads, ties or trails.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from analysis.contacts import NETWORKS
from analysis.html_facts import SECURITY_HEADERS
from analysis.scoring import RULES, rule_points, score_report


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


@dataclass(frozen=True)
class Metric:
    """One grid row: ``extract(report, scores)`` gives the value, ``good(value)`` says whether
    that value deserves to win (beside being the best)."""

    key: str
    label: str
    better: str
    extract: Extractor
    good: Callable[[Any], bool]
    info: bool = False


def _true(value: Any) -> bool:
    return value is True


def _positive(value: Any) -> bool:
    return value is not True and value is not False and value > 0


def _zero(value: Any) -> bool:
    return value == 0 and not isinstance(value, bool)


def _below(limit: float) -> Callable[[Any], bool]:
    return lambda value: not isinstance(value, bool) and value < limit


def _never(value: Any) -> bool:
    return False


def _bool(key: str) -> Extractor:
    return lambda r, s: r.get(key) if isinstance(r.get(key), bool) else None


METRICS: tuple[Metric, ...] = (
    Metric("score_overall", "Overall score", "higher", lambda r, s: s.get("overall"), _positive),
    Metric("score_seo", "SEO score", "higher", lambda r, s: s.get("seo"), _positive),
    Metric("score_performance", "Performance score", "higher",
           lambda r, s: s.get("performance"), _positive),
    Metric("score_security", "Security score", "higher", lambda r, s: s.get("security"),
           _positive),
    Metric("score_content", "Content score", "higher", lambda r, s: s.get("content"), _positive),
    Metric("response_time_ms", "Homepage response time (ms)", "lower",
           lambda r, s: _num(r.get("response_time_ms")), _below(3000)),
    Metric("page_bytes", "Homepage size (bytes)", "lower",
           lambda r, s: _num(r.get("page_bytes")), _below(3_000_000)),
    Metric("redirects", "Redirects before the homepage", "lower",
           lambda r, s: _length(r.get("redirect_chain")), _below(2)),
    Metric("https", "Served over HTTPS", "higher", _bool("https"), _true),
    Metric("security_headers", "Security headers present (of 6)", "higher",
           lambda r, s: _security_count(r), _positive),
    Metric("has_viewport", "Mobile viewport", "higher", _bool("has_viewport"), _true),
    Metric("word_count", "Words on the homepage", "higher",
           lambda r, s: _num(r.get("word_count")), _positive),
    Metric("h2_count", "H2 headings on the homepage", "higher",
           lambda r, s: _num(r.get("h2_count")), _positive),
    Metric("internal_links", "Internal links on the homepage", "higher",
           lambda r, s: _num(r.get("internal_links")), _positive),
    Metric("images_missing_alt", "Homepage images without alt", "lower",
           lambda r, s: _num(r.get("images_missing_alt")), _zero),
    Metric("jsonld_types", "JSON-LD types", "higher",
           lambda r, s: _length(r.get("jsonld_types")), _positive),
    Metric("sitemap_urls", "URLs in sitemaps", "higher", lambda r, s: _sitemap_urls(r),
           _positive),
    Metric("pages_crawled", "Pages crawled", "higher",
           lambda r, s: _num(r.get("pages_crawled")), _never, info=True),
    Metric("emails", "Public e-mail addresses", "higher",
           lambda r, s: _length(r.get("emails")), _positive),
    Metric("social_profiles", "Social profiles", "higher",
           lambda r, s: _length(r.get("social_profiles")), _positive),
    Metric("broken_links", "Broken internal links", "lower",
           lambda r, s: _issue_total(r, "broken_link"), _zero),
    Metric("issues", "Issues over crawled pages", "lower", lambda r, s: _issue_total(r), _zero),
)
METRICS_BY_KEY = {metric.key: metric for metric in METRICS}

_NETWORK_NAMES = {
    "twitter": "X (Twitter)", "linkedin": "LinkedIn", "facebook": "Facebook",
    "instagram": "Instagram", "youtube": "YouTube", "github": "GitHub", "tiktok": "TikTok",
}


def _network_check(network: str) -> Callable[[dict], bool]:
    return lambda r: bool(_sub(r, "social_profiles").get(network))


# Profile links per network: not scored one by one, listed after the scored gaps.
NETWORK_FEATURES: tuple[tuple[str, str, Callable[[dict], bool]], ...] = tuple(
    (f"network.{n}", f"No {_NETWORK_NAMES[n]} profile link", _network_check(n))
    for n in NETWORKS)


def pick_winners(values: dict[str, Any], better: str,
                 good: Callable[[Any], bool] = lambda value: True) -> list[str]:
    """Site ids holding the best value, if that value is a good one; None never wins; ties
    all win; no values -> []."""
    present = {sid: v for sid, v in values.items() if v is not None}
    if not present:
        return []
    best = max(present.values()) if better == "higher" else min(present.values())
    if not good(best):
        return []
    return [sid for sid, v in present.items() if v == best]


def _gap_text(item: dict) -> str:
    verb = "have it" if item["absent"] else "do better"
    return f"{item['text']} ({item['holders']} of {item['rivals']} rivals {verb})"


def site_gaps_detailed(site_id: str, reports: dict[str, dict],
                       points: dict[str, dict[str, float]]) -> list[dict]:
    """What ``site_id`` misses that at least one rival earns, most valuable first."""
    own = points[site_id]
    rivals = [sid for sid in reports if sid != site_id]
    gaps = []
    for rule in RULES:
        mine = own[rule.key]
        better = [points[sid][rule.key] for sid in rivals if points[sid][rule.key] > mine + 1e-9]
        if not better:
            continue
        absent = mine == 0
        gaps.append({
            "key": rule.key, "category": rule.category, "absent": absent,
            "text": rule.lacking if absent else f"{rule.label}: "
            f"{rule.measured(reports[site_id])}",
            "points": round(max(better) - mine, 1), "holders": len(better),
            "rivals": len(rivals), "advice": rule.advice,
        })
    gaps.sort(key=lambda g: -g["points"])
    for key, text, has in NETWORK_FEATURES:
        holders = sum(1 for sid in rivals if has(reports[sid]))
        if holders and not has(reports[site_id]):
            gaps.append({"key": key, "category": "content", "absent": True, "text": text,
                         "points": 0, "holders": holders, "rivals": len(rivals),
                         "advice": "Link your profile on this network from the site."})
    return gaps


def site_strengths(site_id: str, reports: dict[str, dict],
                   points: dict[str, dict[str, float]]) -> list[dict]:
    """Rules where ``site_id`` earns more than every rival, largest lead first."""
    rivals = [sid for sid in reports if sid != site_id]
    if not rivals:
        return []
    strengths = []
    for rule in RULES:
        mine = points[site_id][rule.key]
        theirs = [points[sid][rule.key] for sid in rivals]
        if mine > max(theirs) + 1e-9:
            lacking = sum(1 for value in theirs if value < mine - 1e-9)
            strengths.append({
                "key": rule.key, "category": rule.category, "text": rule.label,
                "measured": rule.measured(reports[site_id]),
                "points": round(mine - sum(theirs) / len(theirs), 1),
                "rivals_behind": lacking, "rivals": len(rivals),
            })
    strengths.sort(key=lambda item: -item["points"])
    return strengths


def site_gaps(site_id: str, reports: dict[str, dict]) -> list[str]:
    """What ``site_id`` lacks that at least one rival with a report has, as text."""
    points = {sid: rule_points(report) for sid, report in reports.items()}
    return [_gap_text(item) for item in site_gaps_detailed(site_id, reports, points)]


def compare(reports: dict[str, dict | None]) -> dict:
    """Rank every metric across sites, with scores, gaps and strengths (module docstring)."""
    ids = [str(sid) for sid in reports]
    usable = {str(sid): r for sid, r in reports.items() if isinstance(r, dict)}
    scores: dict[str, dict | None] = {
        sid: score_report(usable[sid]) if sid in usable else None for sid in ids
    }
    metrics = []
    for metric in METRICS:
        values = {
            sid: metric.extract(usable[sid], scores[sid]) if sid in usable else None
            for sid in ids
        }
        metrics.append({
            "key": metric.key,
            "label": metric.label,
            "better": metric.better,
            "values": values,
            "winners": [] if metric.info else pick_winners(values, metric.better, metric.good),
        })
    points = {sid: rule_points(report) for sid, report in usable.items()}
    details = {sid: site_gaps_detailed(sid, usable, points) if sid in usable else []
               for sid in ids}
    return {
        "metrics": metrics,
        "scores": scores,
        "gaps": {sid: [_gap_text(item) for item in details[sid]] for sid in ids},
        "gap_details": details,
        "strengths": {sid: site_strengths(sid, usable, points) if sid in usable else []
                      for sid in ids},
    }


def standing(comparison: dict, own_id: str | int | None) -> dict[str, str | None]:
    """``{metric key: "lead" | "tie" | "trail" | None}`` for the own site: lead when it wins
    alone, tie when it shares the win, trail when others win; None when the row has no
    winner or the own site has no value."""
    if own_id is None:
        return {}
    own = str(own_id)
    result: dict[str, str | None] = {}
    for metric in comparison.get("metrics") or []:
        winners = [str(w) for w in metric.get("winners") or []]
        value = (metric.get("values") or {}).get(own)
        if not winners or value is None:
            result[metric.get("key")] = None
        elif own in winners:
            result[metric.get("key")] = "lead" if len(winners) == 1 else "tie"
        else:
            result[metric.get("key")] = "trail"
    return result
