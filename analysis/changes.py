"""What changed on a site between two runs: a pure diff of two reports.

``diff(before, after, ...)`` returns one :class:`Change` per difference. A report of
``None`` means the site was unreachable in that run. Noise is never reported: whitespace,
the order of lists, word counts within ±10 % and response times.

Swapping the two sides mirrors the result: every change from A to B appears from B to A
with ``before`` and ``after`` exchanged (and ``*_added`` read as ``*_removed``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

TEXT_FIELDS = ("title", "meta_description", "canonical", "lang")
SCORE_KEYS = ("seo", "performance", "security", "content", "overall")
SCORE_THRESHOLD = 5
WORD_COUNT_TOLERANCE = 0.10
MAX_LISTED_PAGES = 50

KINDS = (
    "title", "meta_description", "h1", "canonical", "lang", "open_graph",
    "pages_added", "pages_removed", "technology_added", "technology_removed",
    "email_added", "email_removed", "social_added", "social_removed",
    "security_header_gained", "security_header_lost", "score_changed",
    "robots_changed", "sitemap_changed", "site_down", "site_up", "word_count",
)
# Kinds that come in pairs: the mirror of one is the other.
MIRROR = {
    "pages_added": "pages_removed", "technology_added": "technology_removed",
    "email_added": "email_removed", "social_added": "social_removed",
    "security_header_gained": "security_header_lost", "site_down": "site_up",
}
MIRROR.update({value: key for key, value in list(MIRROR.items())})


@dataclass(frozen=True)
class Change:
    """One difference: its kind and the values before and after (JSON-ready)."""

    kind: str
    before: Any
    after: Any

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "before": self.before, "after": self.after}


def squash(value: Any) -> str | None:
    """A text value with whitespace collapsed; None and "" both mean absent."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _text_changes(before: Mapping, after: Mapping) -> list[Change]:
    out = [Change(key, before.get(key), after.get(key)) for key in TEXT_FIELDS
           if squash(before.get(key)) != squash(after.get(key))]
    h1_before = sorted(filter(None, map(squash, before.get("h1") or [])))
    h1_after = sorted(filter(None, map(squash, after.get("h1") or [])))
    if h1_before != h1_after:
        out.append(Change("h1", list(before.get("h1") or []), list(after.get("h1") or [])))
    og_before = before.get("open_graph") or {}
    og_after = after.get("open_graph") or {}
    for prop in sorted(set(og_before) | set(og_after)):
        if squash(og_before.get(prop)) != squash(og_after.get(prop)):
            out.append(Change("open_graph", {"property": prop, "value": og_before.get(prop)},
                              {"property": prop, "value": og_after.get(prop)}))
    return out


def _set_changes(old: Iterable[str], new: Iterable[str], added: str, removed: str,
                 key: Any = lambda item: item) -> list[Change]:
    """One record per item: ``after`` names an added item, ``before`` a removed one."""
    old_map = {key(item): item for item in old}
    new_map = {key(item): item for item in new}
    out = [Change(removed, old_map[k], None) for k in sorted(set(old_map) - set(new_map))]
    out += [Change(added, None, new_map[k]) for k in sorted(set(new_map) - set(old_map))]
    return out


def _socials(report: Mapping) -> list[str]:
    return [url for url in (report.get("social_profiles") or {}).values() if url]


def _headers(report: Mapping) -> list[str]:
    return [name for name, present in (report.get("security_headers") or {}).items() if present]


def _robots(report: Mapping) -> dict[str, Any]:
    robots = report.get("robots") or {}
    return {"found": bool(robots.get("found")),
            "disallow_count": robots.get("disallow_count") or 0,
            "crawl_delay": robots.get("crawl_delay"),
            "sitemaps": sorted(robots.get("sitemaps") or [])}


def _sitemap(report: Mapping) -> dict[str, Any]:
    sitemap = report.get("sitemap") or {}
    return {"found": bool(sitemap.get("found")), "url_count": sitemap.get("url_count") or 0}


def _word_count_moved(old: Any, new: Any) -> bool:
    """More than ±10 % apart, measured against the larger (so the rule is symmetric)."""
    if not isinstance(old, int | float) or not isinstance(new, int | float):
        return False
    return abs(old - new) > WORD_COUNT_TOLERANCE * max(abs(old), abs(new))


def _page_changes(old: Iterable[str] | None, new: Iterable[str] | None) -> list[Change]:
    if old is None or new is None:
        return []
    old_set, new_set = set(old), set(new)
    out = []
    removed, added = sorted(old_set - new_set), sorted(new_set - old_set)
    if removed:
        out.append(Change("pages_removed",
                          {"count": len(removed), "urls": removed[:MAX_LISTED_PAGES]}, None))
    if added:
        out.append(Change("pages_added", None,
                          {"count": len(added), "urls": added[:MAX_LISTED_PAGES]}))
    return out


def _score_changes(old: Mapping | None, new: Mapping | None, threshold: int) -> list[Change]:
    if not old or not new:
        return []
    out = []
    for key in SCORE_KEYS:
        a, b = old.get(key), new.get(key)
        if isinstance(a, int | float) and isinstance(b, int | float) and abs(a - b) >= threshold:
            out.append(Change("score_changed", {"score": key, "value": a},
                              {"score": key, "value": b}))
    return out


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, *,
         before_scores: Mapping[str, Any] | None = None,
         after_scores: Mapping[str, Any] | None = None,
         before_pages: Iterable[str] | None = None, after_pages: Iterable[str] | None = None,
         score_threshold: int = SCORE_THRESHOLD) -> list[Change]:
    """Every difference between two runs of one site (None report = unreachable).

    Pages are compared by the set of URLs found, when both sides give them.
    """
    if before is None and after is None:
        return []
    if before is None:
        return [Change("site_up", None, (after or {}).get("final_url"))]
    if after is None:
        return [Change("site_down", before.get("final_url"), None)]
    changes = _text_changes(before, after)
    changes += _page_changes(before_pages, after_pages)
    changes += _set_changes(before.get("technologies") or [], after.get("technologies") or [],
                            "technology_added", "technology_removed")
    changes += _set_changes(before.get("emails") or [], after.get("emails") or [],
                            "email_added", "email_removed", key=lambda e: e.strip().lower())
    changes += _set_changes(_socials(before), _socials(after), "social_added", "social_removed")
    changes += _set_changes(_headers(before), _headers(after), "security_header_gained",
                            "security_header_lost")
    changes += _score_changes(before_scores, after_scores, score_threshold)
    if _robots(before) != _robots(after):
        changes.append(Change("robots_changed", _robots(before), _robots(after)))
    if _sitemap(before) != _sitemap(after):
        changes.append(Change("sitemap_changed", _sitemap(before), _sitemap(after)))
    if _word_count_moved(before.get("word_count"), after.get("word_count")):
        changes.append(Change("word_count", before.get("word_count"), after.get("word_count")))
    return changes


def mirrored(change: Change) -> Change:
    """The same change seen from the other side."""
    return Change(MIRROR.get(change.kind, change.kind), change.after, change.before)


def summary(change: Mapping[str, Any]) -> str:
    """One human line for a stored change (e-mail, feed, timeline)."""
    kind, before, after = change["kind"], change.get("before"), change.get("after")
    if kind in ("pages_added", "pages_removed"):
        info = after if kind == "pages_added" else before
        verb = "added" if kind == "pages_added" else "removed"
        return f"{(info or {}).get('count', 0)} page(s) {verb}"
    if kind == "score_changed":
        return (f"{(after or {}).get('score')} score {(before or {}).get('value')} → "
                f"{(after or {}).get('value')}")
    if kind == "open_graph":
        return (f"{(after or {}).get('property')}: {(before or {}).get('value')!r} → "
                f"{(after or {}).get('value')!r}")
    if kind == "site_down":
        return "site became unreachable"
    if kind == "site_up":
        return "site is reachable again"
    label = kind.replace("_", " ")
    if kind.endswith(("_added", "_gained")):
        return f"{label}: {after}"
    if kind.endswith(("_removed", "_lost")):
        return f"{label}: {before}"
    if kind in ("robots_changed", "sitemap_changed"):
        return label
    return f"{label}: {before!r} → {after!r}"
