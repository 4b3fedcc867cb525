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
  final URL is https 40; each of strict-transport-security, content-security-policy,
  x-frame-options, x-content-type-options, referrer-policy, permissions-policy present 10.

Content (100):
  words on the homepage w: 40 * min(w / 600, 1);
  images with alt: 20 * (images - images_missing_alt) / images  (20 when there are no images);
  <h2> headings h: 10 * min(h / 3, 1);
  internal links l: 10 * min(l / 20, 1);
  pages crawled p: 10 * min(p / 10, 1);
  a public e-mail address 5; a social profile 5.

Overall: the mean of the four scores, rounded half up.
"""

from __future__ import annotations

import math
from typing import Any

from analysis.html_facts import SECURITY_HEADERS

SCORE_KEYS = ("seo", "performance", "security", "content", "overall")


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


def seo_points(report: dict) -> float:
    """SEO points (see module docstring)."""
    points = 0.0
    title_len = _text_len(report.get("title"))
    if title_len:
        points += 15 + (5 if 10 <= title_len <= 70 else 0)
    desc_len = _text_len(report.get("meta_description"))
    if desc_len:
        points += 15 + (5 if 50 <= desc_len <= 160 else 0)
    h1 = report.get("h1") if isinstance(report.get("h1"), list) else []
    points += 10 if len(h1) == 1 else 5 if h1 else 0
    points += 10 if report.get("canonical") else 0
    points += 10 if report.get("has_viewport") is True else 0
    points += 5 if report.get("lang") else 0
    points += 5 if _sub(report, "open_graph") else 0
    points += 5 if report.get("jsonld_types") else 0
    points += 5 if _sub(report, "robots").get("found") is True else 0
    points += 5 if _sub(report, "sitemap").get("found") is True else 0
    points += 5 if _issue_count(report, "broken_link") == 0 else 0
    return points


def performance_points(report: dict) -> float:
    """Performance points (see module docstring)."""
    points = 0.0
    elapsed = _number(report.get("response_time_ms"))
    if elapsed is not None:
        points += 50 * _clamp01((3000 - elapsed) / 2800)
    size = _number(report.get("page_bytes"))
    if size is not None:
        points += 25 * _clamp01((3_000_000 - size) / 2_900_000)
    chain = report.get("redirect_chain")
    hops = len(chain) if isinstance(chain, list) else None
    points += {0: 10, 1: 5}.get(hops, 0) if hops is not None else 0
    pages = _number(report.get("pages_crawled")) or 0
    if pages > 0:
        points += 15 * _clamp01(1 - _issue_count(report, "slow_page") / pages)
    return points


def security_points(report: dict) -> float:
    """Security points (see module docstring)."""
    headers = _sub(report, "security_headers")
    points = 40.0 if report.get("https") is True else 0.0
    return points + sum(10 for name in SECURITY_HEADERS if headers.get(name) is True)


def content_points(report: dict) -> float:
    """Content points (see module docstring)."""
    points = 40 * _clamp01((_number(report.get("word_count")) or 0) / 600)
    images = _number(report.get("images")) or 0
    missing = _number(report.get("images_missing_alt")) or 0
    points += 20 * _clamp01((images - missing) / images) if images > 0 else 20
    points += 10 * _clamp01((_number(report.get("h2_count")) or 0) / 3)
    points += 10 * _clamp01((_number(report.get("internal_links")) or 0) / 20)
    points += 10 * _clamp01((_number(report.get("pages_crawled")) or 0) / 10)
    points += 5 if report.get("emails") else 0
    points += 5 if _sub(report, "social_profiles") else 0
    return points


def score_report(report: dict) -> dict[str, int]:
    """``{seo, performance, security, content, overall}``, each an int in 0..100."""
    report = report if isinstance(report, dict) else {}
    scores = {
        "seo": _round(seo_points(report)),
        "performance": _round(performance_points(report)),
        "security": _round(security_points(report)),
        "content": _round(content_points(report)),
    }
    scores["overall"] = _round(sum(scores.values()) / 4)
    return scores
