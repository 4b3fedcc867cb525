"""View models of the browser pages: the new-batch form's per-line errors, the comparison grid
and competitor cards, and the live status document the batch page polls."""

from __future__ import annotations

import re
from typing import Any

from flask import url_for

from analysis.comparison import METRICS_BY_KEY, standing
from analysis.explain import failure_reason
from analysis.scoring import CATEGORIES, CATEGORY_LABELS, breakdown
from models import Batch, BatchEvent, Site
from routes.api_serializers import event_body, site_name
from routes.web_charts import SCORE_LABELS, grouped_score_bars, overall_bars, site_label

FINISHED = ("completed", "partial", "failed", "cancelled")


def url_lines(text: str) -> list[tuple[int, str]]:
    """(line number, item) for each URL typed: one per line or comma-separated."""
    items = []
    for number, line in enumerate((text or "").replace("\r\n", "\n").split("\n"), start=1):
        items.extend((number, part.strip()) for part in line.split(",") if part.strip())
    return items


def line_errors(items: list[tuple[int, str]], url_errors: Any) -> tuple[list[dict], str | None]:
    """Per-item messages for errors keyed by index, or one message for the whole list."""
    if isinstance(url_errors, dict):
        rows = []
        for index, message in sorted(url_errors.items(), key=lambda kv: int(kv[0])):
            line, value = items[int(index)]
            rows.append({"line": line, "value": value, "message": message})
        return rows, None
    return [], url_errors if isinstance(url_errors, str) else None


# Rows counting things a site may simply not have: 0 reads "none" (checked, absent);
# "n/a" stays for a value that could not be measured.
NONE_WHEN_ZERO = {"redirects", "security_headers", "jsonld_types", "sitemap_urls", "emails",
                  "social_profiles", "broken_links", "issues", "images_missing_alt",
                  "h2_count", "internal_links", "word_count"}
ONE_OF_MANY = re.compile(r"\b((?<![\d,.])1) (site|page|URL)s\b")  # "1 pages" -> "1 page"
STANDING_TEXT = {"lead": "You lead", "tie": "You tie", "trail": "You trail"}
CARD_ITEMS = 6


def format_value(value: Any, key: str | None = None) -> str:
    """A grid cell: Yes/No, grouped digits, "none" for a count of nothing, or "n/a" for a
    value that does not exist."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if key in NONE_WHEN_ZERO and value == 0:
        return "none"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.1f}"
    return str(value)


def site_columns(sites: list[Site]) -> list[dict[str, Any]]:
    """One column per site, the own site first: its name, host, status and plain reason."""
    ordered = sorted(sites, key=lambda s: not getattr(s, "is_own", False))
    return [{"id": s.id, "url": s.url, "label": site_name(s), "host": site_label(s.url),
             "status": s.status, "error": s.error, "is_own": bool(getattr(s, "is_own", False)),
             "reason": failure_reason(s.error) if s.status == "failed" else None}
            for s in ordered]


def _points(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _card_items(items: list[dict], kind: str) -> list[dict[str, Any]]:
    shown = []
    for item in items[:CARD_ITEMS]:
        category = CATEGORY_LABELS.get(item.get("category", ""), "")
        worth = item.get("points") or 0
        if kind == "gap":
            detail = (f"{item.get('holders')} of {item.get('rivals')} rivals "
                      + ("have it" if item.get("absent") else "do better"))
        else:
            behind = item.get("rivals_behind", 0)
            detail = f"ahead of {behind} of {item.get('rivals')} rivals ({item.get('measured')})"
        shown.append({"text": item.get("text"), "detail": detail, "advice": item.get("advice"),
                      "points": f"{_points(worth)} {category} points" if worth else "",
                      "worth": worth})
    return shown


def _card(column: dict, data: dict, wins: int) -> dict[str, Any]:
    sid = str(column["id"])
    site_scores = (data.get("scores") or {}).get(sid) or {}
    details = (data.get("gap_details") or {}).get(sid)
    if details is None:  # a comparison stored before gaps had points
        details = [{"text": text, "points": 0, "holders": "", "rivals": ""}
                   for text in (data.get("gaps") or {}).get(sid) or []]
    strengths = (data.get("strengths") or {}).get(sid) or []
    return {**column, "wins": wins,
            "gaps": _card_items(details, "gap"), "more_gaps": max(len(details) - CARD_ITEMS, 0),
            "strengths": _card_items(strengths, "strength"),
            "more_strengths": max(len(strengths) - CARD_ITEMS, 0),
            "scores": [{"label": label, "text": format_value(site_scores.get(key)),
                        "na": site_scores.get(key) is None} for key, label in SCORE_LABELS]}


def comparison_view(sites: list[Site], data: dict[str, Any]) -> dict[str, Any]:
    """Grid rows (metrics x sites, winners marked, the own site first with its standing per
    row), competitor cards (strengths and gaps ranked by points) and chart geometry."""
    columns = site_columns(sites)
    own = next((c for c in columns if c["is_own"]), None)
    rows_standing = standing(data, own["id"]) if own else {}
    scores = data.get("scores") or {}
    wins = {str(c["id"]): 0 for c in columns}
    rows = []
    for metric in data.get("metrics") or []:
        key = metric.get("key")
        values = metric.get("values") or {}
        winners = {str(w) for w in metric.get("winners") or []}
        cells = []
        for column in columns:
            sid = str(column["id"])
            value = values.get(sid)
            winner = sid in winners
            wins[sid] = wins.get(sid, 0) + (1 if winner else 0)
            cells.append({"text": format_value(value, key), "na": value is None,
                          "winner": winner, "own": column["is_own"]})
        info = key in METRICS_BY_KEY and METRICS_BY_KEY[key].info
        position = rows_standing.get(key)
        rows.append({"key": key, "label": metric.get("label"), "better": metric.get("better"),
                     "info": info, "cells": cells, "standing": position,
                     "standing_text": STANDING_TEXT.get(position or "", "")})
    cards = [_card(column, data, wins.get(str(column["id"]), 0)) for column in columns]
    return {"columns": columns, "rows": rows, "cards": cards, "own": own,
            "overall_chart": overall_bars(columns, scores),
            "scores_chart": grouped_score_bars(columns, scores)}


def breakdown_view(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The score breakdown grouped by category: rules with points won and missed."""
    rows = breakdown(report)
    groups = []
    for category in CATEGORIES:
        mine = [dict(r, points_text=_points(r["points"]), max_text=_points(r["max_points"]),
                     missed_text=_points(r["missed"]))
                for r in rows if r["category"] == category]
        groups.append({"key": category, "label": CATEGORY_LABELS[category], "rules": mine,
                       "points": _points(round(sum(r["points"] for r in mine), 1))})
    return groups


def timeline_events(events: list[BatchEvent], sites: list[Site]) -> list[dict[str, Any]]:
    """Events for the page: each failure once (a homepage's failed fetch is told by the
    site's failure that follows), failures in plain words with the technical detail kept."""
    homepages = {s.id: s.url for s in sites}
    shown = []
    for event in events:
        body = event_body(event)
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        if body["kind"] == "fetch_failed" and data.get("url") == homepages.get(event.site_id):
            continue
        body["detail"] = None
        body["message"] = ONE_OF_MANY.sub(r"\1 \2", body["message"] or "")
        if body["kind"] == "site_failed":
            reason = data.get("reason")
            url = homepages.get(event.site_id, "")
            body["detail"] = reason
            body["message"] = f"Failed {url}: {failure_reason(reason)}".replace(" : ", ": ")
        shown.append(body)
    return shown


def status_document(batch: Batch, progress: int, sites: list[Site], pages: dict[int, int],
                    events: list[BatchEvent]) -> dict[str, Any]:
    """What the batch page's script polls: progress, per-site status and new events."""
    finished = batch.status in FINISHED
    has_comparison = batch.status in ("completed", "partial", "failed")
    return {
        "id": batch.id,
        "status": batch.status,
        "progress": progress,
        "finished": finished,
        "sites": [{"id": s.id, "url": s.url, "name": site_name(s), "status": s.status,
                   "error": s.error,
                   "reason": failure_reason(s.error) if s.status == "failed" else None,
                   "pages": pages.get(s.id, 0)} for s in sites],
        "events": timeline_events(events, sites),
        "links": {
            "comparison": url_for("web.comparison", batch_id=batch.id) if has_comparison
            else None,
        },
    }
