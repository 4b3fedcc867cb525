"""Geometry of the comparison's server-rendered SVG charts.

Only numbers and plain strings are computed here; ``templates/_charts.html`` writes the SVG
through Jinja's autoescaping, so site names from crawled data can never become markup.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

# Colour-blind friendly palette (Okabe-Ito), each readable against white.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#6B6B6B",
           "#882255")
SCORE_LABELS = (("seo", "SEO"), ("performance", "Performance"), ("security", "Security"),
                ("content", "Content"), ("overall", "Overall"))
LABEL_CHARS = 18


def site_label(url: str) -> str:
    """Host (and port) of a site URL: the short name used in the grid and the charts."""
    parts = urlsplit(url)
    label = parts.netloc or url
    return label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "…"


def short(label: str) -> str:
    """A name cut to fit the charts' label space."""
    return label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "…"


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def overall_bars(sites: list[dict[str, Any]], scores: dict[str, Any]) -> dict[str, Any]:
    """Horizontal bars: one per site, its overall score (a failed site shows "n/a")."""
    width, left, right, bar, gap, top = 640, 190, 48, 24, 14, 12
    plot = width - left - right
    bars = []
    for index, site in enumerate(sites):
        value = (scores.get(str(site["id"])) or {}).get("overall")
        y = top + index * (bar + gap)
        length = plot * value / 100 if isinstance(value, int | float) else 0
        bars.append({"label": short(site["label"]), "value": value, "y": y, "height": bar,
                     "width": round(length, 1), "colour": colour(index),
                     "text_y": y + bar * 0.68, "value_x": round(left + length + 6, 1)})
    rows_bottom = top + len(sites) * (bar + gap) - gap + 6
    ticks = [{"x": round(left + plot * t / 100, 1), "label": t} for t in (0, 25, 50, 75, 100)]
    return {"width": width, "height": rows_bottom + 24, "left": left, "bars": bars,
            "ticks": ticks, "plot_top": top - 6, "plot_bottom": rows_bottom,
            "axis_y": rows_bottom + 16}


def grouped_score_bars(sites: list[dict[str, Any]], scores: dict[str, Any]) -> dict[str, Any]:
    """Vertical bars grouped by score (SEO ... Overall), one bar per site in each group."""
    width, left, right, top, plot_h = 640, 40, 12, 16, 220
    legend_row = 22
    plot_w = width - left - right
    group_w = plot_w / len(SCORE_LABELS)
    inner = group_w - 18
    bar_w = inner / max(len(sites), 1)
    baseline = top + plot_h
    groups = []
    for g_index, (key, label) in enumerate(SCORE_LABELS):
        x0 = left + g_index * group_w + 9
        bars = []
        for s_index, site in enumerate(sites):
            value = (scores.get(str(site["id"])) or {}).get(key)
            height = plot_h * value / 100 if isinstance(value, int | float) else 0
            x = x0 + s_index * bar_w
            bars.append({"x": round(x, 1), "y": round(baseline - height, 1),
                         "width": round(max(bar_w - 2, 1), 1), "height": round(height, 1),
                         "value": value, "colour": colour(s_index), "site": short(site["label"]),
                         "text_x": round(x + bar_w / 2 - 1, 1)})
        groups.append({"label": label, "bars": bars, "label_x": round(x0 + inner / 2, 1)})
    grid = [{"y": round(baseline - plot_h * t / 100, 1), "label": t} for t in (0, 25, 50, 75, 100)]
    legend_top = baseline + 40
    legend = [{"label": short(site["label"]), "colour": colour(i), "x": left + (i % 2) * 300,
               "y": legend_top + (i // 2) * legend_row} for i, site in enumerate(sites)]
    height = legend_top + ((len(sites) + 1) // 2) * legend_row + 8
    return {"width": width, "height": height, "left": left, "right": width - right,
            "baseline": baseline, "groups": groups, "grid": grid, "legend": legend}
