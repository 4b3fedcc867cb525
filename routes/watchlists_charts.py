"""Geometry of the watchlist trend charts: each score per site over the runs.

Numbers and plain strings only; ``templates/watchlists/_trend.html`` writes the SVG with
autoescaping. The viewBox is narrow (360 units) so the text stays legible at 390 px.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from routes.web_charts import SCORE_LABELS, colour, site_label

WIDTH, HEIGHT = 360, 200
LEFT, RIGHT, TOP, BOTTOM = 30, 10, 10, 28


def _x(index: int, count: int) -> float:
    span = WIDTH - LEFT - RIGHT
    return round(LEFT + (span * index / (count - 1) if count > 1 else span / 2), 1)


def _y(value: float) -> float:
    return round(TOP + (HEIGHT - TOP - BOTTOM) * (1 - value / 100), 1)


def trend_charts(history: list[dict[str, Any]], urls: list[str]) -> list[dict[str, Any]]:
    """One chart per score: a polyline per site through its value at each finished run
    (a failed site leaves a gap), runs oldest to newest left to right."""
    count = len(history)
    charts = []
    for key, label in SCORE_LABELS:
        lines = []
        for index, url in enumerate(urls):
            segments: list[list[dict[str, Any]]] = [[]]
            for run_index, run in enumerate(history):
                value = ((run["sites"].get(url) or {}) or {}).get(key)
                if isinstance(value, int | float):
                    segments[-1].append({"x": _x(run_index, count), "y": _y(value),
                                         "value": value, "run": run_index + 1})
                elif segments[-1]:
                    segments.append([])
            points = [p for segment in segments for p in segment]
            lines.append({
                "label": site_label(url), "colour": colour(index), "points": points,
                "paths": [" ".join(f"{p['x']},{p['y']}" for p in s) for s in segments if s],
                "last": points[-1]["value"] if points else None})
        charts.append({
            "key": key, "label": label, "width": WIDTH, "height": HEIGHT, "left": LEFT,
            "right": WIDTH - RIGHT, "lines": lines,
            "grid": [{"y": _y(t), "label": t} for t in (0, 50, 100)],
            "runs": [{"x": _x(i, count), "label": _run_label(history[i]["at"], i),
                      "anchor": _anchor(i, count)}
                     for i in (range(count) if count <= 6 else (0, count // 2, count - 1))],
            "axis_y": HEIGHT - 10})
    return charts


def _anchor(index: int, count: int) -> str:
    """Edge labels grow inwards so they are never clipped."""
    if count > 1 and index == 0:
        return "start"
    return "end" if count > 1 and index == count - 1 else "middle"


def _run_label(at: datetime | None, index: int) -> str:
    return at.strftime("%d %b") if at else f"#{index + 1}"
