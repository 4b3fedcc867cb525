"""Scores 0-100 for a site report: seo, performance, security, content and overall.

Every score is a sum of points, rounded half up to an integer and clamped to 0..100. A value
the report lacks (null) earns no points. ``clamp01(x)`` below means min(max(x, 0), 1).

SEO (100):
  title present 15, its length 10-70 characters 5;
  meta description present 15, its length 50-160 characters 5;
  exactly one <h1> 10 (several: 5, none: 0);
  canonical link 10; viewport meta 10; <html lang> non-empty 5;
  any Open Graph property 5; any JSON-LD type 5;
  robots.txt found 5; sitemap found 5; no broken_link issue 5.

Performance (100):
  homepage response time t ms: 50 * clamp01((3000 - t) / 2800)  (full at <= 200 ms, 0 at >= 3 s);
  homepage bytes b: 25 * clamp01((3_000_000 - b) / 2_900_000)  (full at <= 100 kB, 0 at >= 3 MB);
  redirects before the homepage: none 10, one 5, more 0;
  pages not slow: 15 * (1 - slow_page count / pages_crawled)  (0 when no page was crawled).

Security (100):
  final URL is https 40; each of content-security-policy, x-frame-options,
  x-content-type-options, referrer-policy, permissions-policy present 10;
  strict-transport-security present 10, only when the final URL is https (browsers ignore
  HSTS sent over plain HTTP).

Content (100):
  words on the homepage w: 40 * min(w / 600, 1);
  images with alt: 20 * (images - images_missing_alt) / images  (20 when there are no images);
  <h2> headings h: 10 * min(h / 3, 1);
  internal links l: 10 * min(l / 20, 1);
  pages crawled p: 10 * min(p / 10, 1);
  a public e-mail address 5; a social profile 5.

Overall: the mean of the four scores, rounded half up.

The score is the sum of ``RULES``: each rule gives the points a report earns, what was
measured and how to earn the rest. ``breakdown(report)`` lists the same rules, so the score and
its explanation cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from analysis.html_facts import SECURITY_HEADERS

SCORE_KEYS = ("seo", "performance", "security", "content", "overall")
CATEGORIES = ("seo", "performance", "security", "content")
CATEGORY_LABELS = {"seo": "SEO", "performance": "Performance", "security": "Security",
                   "content": "Content"}
HEADER_NAMES = {
    "strict-transport-security": "Strict-Transport-Security",
    "content-security-policy": "Content-Security-Policy",
    "x-frame-options": "X-Frame-Options",
    "x-content-type-options": "X-Content-Type-Options",
    "referrer-policy": "Referrer-Policy",
    "permissions-policy": "Permissions-Policy",
}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _clamp01(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def _round(points: float) -> int:
    return int(min(max(math.floor(points + 0.5), 0), 100))


def _text_len(value: Any) -> int | None:
    return len(value) if isinstance(value, str) and value else None


def _issue_count(report: dict, code: str) -> int:
    for issue in report.get("issues") or []:
        if isinstance(issue, dict) and issue.get("code") == code:
            return int(_number(issue.get("count")) or 0)
    return 0


def _sub(report: dict, key: str) -> dict:
    value = report.get(key)
    return value if isinstance(value, dict) else {}


def _plural(count: float | int, word: str) -> str:
    count = int(count)
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


@dataclass(frozen=True)
class Rule:
    """One scoring rule: ``points(report)`` in 0..``max_points``; ``measured(report)`` says
    what was found, ``advice`` how to earn the points, ``lacking`` what a site without them
    misses (used for gaps)."""

    key: str
    category: str
    label: str
    max_points: float
    points: Callable[[dict], float]
    measured: Callable[[dict], str]
    advice: str
    lacking: str


def _title_points(r: dict) -> float:
    n = _text_len(r.get("title"))
    return 0 if not n else 15 + (5 if 10 <= n <= 70 else 0)


def _description_points(r: dict) -> float:
    n = _text_len(r.get("meta_description"))
    return 0 if not n else 15 + (5 if 50 <= n <= 160 else 0)


def _h1_list(r: dict) -> list:
    return r.get("h1") if isinstance(r.get("h1"), list) else []


def _text_measure(key: str, name: str) -> Callable[[dict], str]:
    def measure(r: dict) -> str:
        n = _text_len(r.get(key))
        return f"{name} of {_plural(n, 'character')}" if n else f"no {name}"
    return measure


def _response_points(r: dict) -> float:
    t = _number(r.get("response_time_ms"))
    return 0 if t is None else 50 * _clamp01((3000 - t) / 2800)


def _bytes_points(r: dict) -> float:
    b = _number(r.get("page_bytes"))
    return 0 if b is None else 25 * _clamp01((3_000_000 - b) / 2_900_000)


def _hops(r: dict) -> int | None:
    chain = r.get("redirect_chain")
    return len(chain) if isinstance(chain, list) else None


def _slow_points(r: dict) -> float:
    pages = _number(r.get("pages_crawled")) or 0
    return 15 * _clamp01(1 - _issue_count(r, "slow_page") / pages) if pages > 0 else 0


def _header_points(name: str) -> Callable[[dict], float]:
    def points(r: dict) -> float:
        if _sub(r, "security_headers").get(name) is not True:
            return 0
        if name == "strict-transport-security" and r.get("https") is not True:
            return 0
        return 10
    return points


def _header_measure(name: str) -> Callable[[dict], str]:
    def measure(r: dict) -> str:
        present = _sub(r, "security_headers").get(name) is True
        if present and name == "strict-transport-security" and r.get("https") is not True:
            return "sent over plain HTTP, where browsers ignore it"
        return "present" if present else "absent"
    return measure


def _alt_points(r: dict) -> float:
    images = _number(r.get("images")) or 0
    missing = _number(r.get("images_missing_alt")) or 0
    return 20 * _clamp01((images - missing) / images) if images > 0 else 20


def _ratio(key: str, full: float, points: float) -> Callable[[dict], float]:
    return lambda r: points * _clamp01((_number(r.get(key)) or 0) / full)


def _count_measure(key: str, word: str) -> Callable[[dict], str]:
    def measure(r: dict) -> str:
        n = _number(r.get(key))
        return "not measured" if n is None else _plural(n, word)
    return measure


def _size_measure(size: float | None) -> str:
    if size is None:
        return "not measured"
    return _plural(size, "byte") if size < 1000 else f"{size / 1000:,.0f} kB"


def _og_measure(r: dict) -> str:
    n = len(_sub(r, "open_graph"))
    return "none" if n == 0 else "1 property" if n == 1 else f"{n} properties"


def _flag(check: Callable[[dict], bool], points: float) -> Callable[[dict], float]:
    return lambda r: points if check(r) else 0


def _header_rules() -> list[Rule]:
    rules = []
    for name in SECURITY_HEADERS:
        shown = HEADER_NAMES[name]
        advice = f"Send the {shown} header with every response."
        if name == "strict-transport-security":
            advice = "Serve the site over HTTPS and send Strict-Transport-Security there."
        rules.append(Rule(f"security.{name}", "security", f"{shown} header", 10,
                          _header_points(name), _header_measure(name), advice,
                          f"No {shown} header"))
    return rules


RULES: tuple[Rule, ...] = (
    Rule("seo.title", "seo", "Page title", 20, _title_points,
         _text_measure("title", "title"),
         "Give the homepage a <title> of 10 to 70 characters.", "No page title"),
    Rule("seo.description", "seo", "Meta description", 20, _description_points,
         _text_measure("meta_description", "description"),
         "Add a meta description of 50 to 160 characters.", "No meta description"),
    Rule("seo.h1", "seo", "One <h1> heading", 10,
         lambda r: 10 if len(_h1_list(r)) == 1 else 5 if _h1_list(r) else 0,
         lambda r: _plural(len(_h1_list(r)), "<h1> heading"),
         "Use exactly one <h1> heading on the homepage.", "No single <h1> heading"),
    Rule("seo.canonical", "seo", "Canonical link", 10,
         _flag(lambda r: bool(r.get("canonical")), 10),
         lambda r: _yes(bool(r.get("canonical"))),
         'Add <link rel="canonical"> pointing at the preferred address.', "No canonical link"),
    Rule("seo.viewport", "seo", "Mobile viewport", 10,
         _flag(lambda r: r.get("has_viewport") is True, 10),
         lambda r: _yes(r.get("has_viewport") is True),
         'Add <meta name="viewport" content="width=device-width, initial-scale=1">.',
         "No mobile viewport meta tag"),
    Rule("seo.lang", "seo", "Page language", 5, _flag(lambda r: bool(r.get("lang")), 5),
         lambda r: str(r.get("lang")) if r.get("lang") else "none",
         'Declare the language, e.g. <html lang="en">.', "No lang attribute on <html>"),
    Rule("seo.open_graph", "seo", "Open Graph tags", 5,
         _flag(lambda r: bool(_sub(r, "open_graph")), 5),
         _og_measure,
         "Add og:title, og:description and og:image for link previews.", "No Open Graph tags"),
    Rule("seo.jsonld", "seo", "Structured data (JSON-LD)", 5,
         _flag(lambda r: bool(r.get("jsonld_types")), 5),
         lambda r: ", ".join(map(str, r.get("jsonld_types") or [])) or "none",
         "Describe the organisation or product with a JSON-LD block.",
         "No JSON-LD structured data"),
    Rule("seo.robots", "seo", "robots.txt", 5,
         _flag(lambda r: _sub(r, "robots").get("found") is True, 5),
         lambda r: "found" if _sub(r, "robots").get("found") is True else "not found",
         "Publish a robots.txt at the site root.", "No robots.txt"),
    Rule("seo.sitemap", "seo", "XML sitemap", 5,
         _flag(lambda r: _sub(r, "sitemap").get("found") is True, 5),
         lambda r: (_plural(_sub(r, "sitemap").get("url_count") or 0, "URL")
                    if _sub(r, "sitemap").get("found") is True else "not found"),
         "Publish /sitemap.xml and list it in robots.txt.", "No sitemap"),
    Rule("seo.broken_links", "seo", "No broken internal links", 5,
         _flag(lambda r: _issue_count(r, "broken_link") == 0, 5),
         lambda r: _plural(_issue_count(r, "broken_link"), "broken link"),
         "Fix or remove the internal links that answer with an error.", "Broken internal links"),
    Rule("performance.response", "performance", "Homepage response time", 50, _response_points,
         lambda r: ("not measured" if _number(r.get("response_time_ms")) is None
                    else f"{_number(r.get('response_time_ms')):,.0f} ms"),
         "Answer within 200 ms (full points); nothing is earned from 3 s.",
         "Slower homepage"),
    Rule("performance.bytes", "performance", "Homepage size", 25, _bytes_points,
         lambda r: _size_measure(_number(r.get("page_bytes"))),
         "Keep the homepage HTML under 100 kB (nothing is earned from 3 MB).",
         "Heavier homepage"),
    Rule("performance.redirects", "performance", "Redirects before the homepage", 10,
         lambda r: {0: 10, 1: 5}.get(_hops(r), 0) if _hops(r) is not None else 0,
         lambda r: "not measured" if _hops(r) is None else _plural(_hops(r) or 0, "redirect"),
         "Link to the final address so the homepage answers without redirects.",
         "More redirects before the homepage"),
    Rule("performance.slow_pages", "performance", "Pages answering within 1 s", 15, _slow_points,
         lambda r: (f"{_plural(_issue_count(r, 'slow_page'), 'slow page')} of "
                    f"{int(_number(r.get('pages_crawled')) or 0):,} crawled"),
         "Make every page answer within 1 second.", "Slow pages"),
    Rule("security.https", "security", "Served over HTTPS", 40,
         _flag(lambda r: r.get("https") is True, 40),
         lambda r: _yes(r.get("https") is True),
         "Serve the site over HTTPS and redirect http:// to it.", "Not served over HTTPS"),
    *_header_rules(),
    Rule("content.words", "content", "Words on the homepage", 40, _ratio("word_count", 600, 40),
         _count_measure("word_count", "word"),
         "Write at least 600 words of useful text on the homepage.", "Less text on the homepage"),
    Rule("content.alt", "content", "Images with alt text", 20, _alt_points,
         lambda r: (f"{int(_number(r.get('images_missing_alt')) or 0):,} of "
                    f"{_plural(_number(r.get('images')) or 0, 'image')} without alt"
                    if _number(r.get("images")) else "no images"),
         "Give every meaningful image an alt text.", "Images without alt text"),
    Rule("content.h2", "content", "<h2> headings", 10, _ratio("h2_count", 3, 10),
         _count_measure("h2_count", "<h2> heading"),
         "Structure the homepage with at least three <h2> headings.", "Fewer <h2> headings"),
    Rule("content.internal_links", "content", "Internal links", 10,
         _ratio("internal_links", 20, 10), _count_measure("internal_links", "internal link"),
         "Link to at least 20 of your own pages from the homepage.", "Fewer internal links"),
    Rule("content.pages", "content", "Pages found", 10, _ratio("pages_crawled", 10, 10),
         _count_measure("pages_crawled", "page"),
         "Link at least 10 HTML pages from the homepage (within the crawl's page limit).",
         "Fewer pages found"),
    Rule("content.email", "content", "Public e-mail address", 5,
         _flag(lambda r: bool(r.get("emails")), 5),
         lambda r: ", ".join(map(str, r.get("emails") or [])) or "none",
         "Show a contact e-mail address on the site.", "No public e-mail address"),
    Rule("content.social", "content", "Social profile", 5,
         _flag(lambda r: bool(_sub(r, "social_profiles")), 5),
         lambda r: ", ".join(sorted(_sub(r, "social_profiles"))) or "none",
         "Link your social profiles from the site.", "No social profile link"),
)
RULES_BY_KEY = {rule.key: rule for rule in RULES}


def _safe_points(rule: Rule, report: dict) -> float:
    return min(max(float(rule.points(report)), 0.0), rule.max_points)


def category_points(report: dict, category: str) -> float:
    """The unrounded sum of one category's rules."""
    return sum(_safe_points(rule, report) for rule in RULES if rule.category == category)


def seo_points(report: dict) -> float:
    return category_points(report, "seo")


def performance_points(report: dict) -> float:
    return category_points(report, "performance")


def security_points(report: dict) -> float:
    return category_points(report, "security")


def content_points(report: dict) -> float:
    return category_points(report, "content")


def rule_points(report: dict) -> dict[str, float]:
    """``{rule key: points earned}`` for every rule."""
    report = report if isinstance(report, dict) else {}
    return {rule.key: _safe_points(rule, report) for rule in RULES}


def score_report(report: dict) -> dict[str, int]:
    """``{seo, performance, security, content, overall}``, each an int in 0..100."""
    report = report if isinstance(report, dict) else {}
    scores = {category: _round(category_points(report, category)) for category in CATEGORIES}
    scores["overall"] = _round(sum(scores.values()) / 4)
    return scores


def breakdown(report: dict) -> list[dict[str, Any]]:
    """Every rule with the points won and missed, what was measured and how to earn the rest.

    The points of one category add up (before rounding) to that category's score.
    """
    report = report if isinstance(report, dict) else {}
    rows = []
    for rule in RULES:
        won = _safe_points(rule, report)
        missed = rule.max_points - won
        rows.append({
            "key": rule.key,
            "category": rule.category,
            "label": rule.label,
            "max_points": rule.max_points,
            "points": round(won, 1),
            "missed": round(missed, 1),
            "measured": rule.measured(report),
            "advice": rule.advice if missed > 0.05 else "",
        })
    return rows
