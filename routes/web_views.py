"""View models of the browser pages: the new-batch form's per-line errors, the comparison grid
and competitor cards, and the live status document the batch page polls."""

from __future__ import annotations

from typing import Any

from flask import url_for

from models import Batch, BatchEvent, Site
from routes.api_serializers import event_body
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


def format_value(value: Any) -> str:
    """A grid cell: Yes/No, grouped digits, or "n/a" for a value that does not exist."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.1f}"
    return str(value)


def site_columns(sites: list[Site]) -> list[dict[str, Any]]:
    return [{"id": s.id, "url": s.url, "label": site_label(s.url), "status": s.status,
             "error": s.error} for s in sites]


def comparison_view(sites: list[Site], data: dict[str, Any]) -> dict[str, Any]:
    """Grid rows (metrics x sites, winners marked), competitor cards and chart geometry."""
    columns = site_columns(sites)
    scores = data.get("scores") or {}
    gaps = data.get("gaps") or {}
    wins = {str(c["id"]): 0 for c in columns}
    rows = []
    for metric in data.get("metrics") or []:
        values = metric.get("values") or {}
        winners = {str(w) for w in metric.get("winners") or []}
        cells = []
        for column in columns:
            sid = str(column["id"])
            value = values.get(sid)
            winner = sid in winners
            wins[sid] = wins.get(sid, 0) + (1 if winner else 0)
            cells.append({"text": format_value(value), "na": value is None, "winner": winner})
        rows.append({"key": metric.get("key"), "label": metric.get("label"),
                     "better": metric.get("better"), "cells": cells})
    cards = []
    for column in columns:
        sid = str(column["id"])
        site_scores = scores.get(sid) or {}
        cards.append({**column, "wins": wins.get(sid, 0), "gaps": gaps.get(sid) or [],
                      "scores": [{"label": label, "text": format_value(site_scores.get(key)),
                                  "na": site_scores.get(key) is None}
                                 for key, label in SCORE_LABELS]})
    return {"columns": columns, "rows": rows, "cards": cards,
            "overall_chart": overall_bars(columns, scores),
            "scores_chart": grouped_score_bars(columns, scores)}


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
        "sites": [{"id": s.id, "url": s.url, "status": s.status, "error": s.error,
                   "pages": pages.get(s.id, 0)} for s in sites],
        "events": [event_body(e) for e in events],
        "links": {
            "comparison": url_for("web.comparison", batch_id=batch.id) if has_comparison
            else None,
        },
    }
