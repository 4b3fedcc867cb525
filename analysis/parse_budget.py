"""Bound the HTML parser's worst case: very deep nesting makes tree building quadratic.

Each block-level tag makes the parser scan the stack of open elements, so a hostile page of
100,000 nested ``<div>`` costs seconds and one of a million costs many minutes. Browsers cap
tree depth; we cannot change the parser, so we estimate its work before parsing (one linear
regex pass: depth of elements that stay open, summed over every tag) and cut the document at
the tag where the estimate passes a budget. Real pages stay orders of magnitude below it.
"""

from __future__ import annotations

import re

WORK_BUDGET = 1_000_000_000  # ~ a couple of seconds of parser work in the worst case

_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]{0,30})")
_NOT_NESTING = frozenset(
    {
        # void elements never hold children
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr", "keygen", "image",
        # elements the parser closes implicitly when a sibling starts
        "p", "li", "dd", "dt", "option", "optgroup", "tr", "td", "th", "thead", "tbody",
        "tfoot", "caption", "colgroup", "rb", "rp", "rt", "rtc",
    }
)


def truncate_for_parser(text: str, budget: int = WORK_BUDGET) -> str:
    """``text`` unchanged, or cut at the first tag where the estimated parser work exceeds budget."""
    depth = 0
    work = 0
    for match in _TAG.finditer(text):
        closing, name = match.group(1), match.group(2).lower()
        if name not in _NOT_NESTING:
            depth = max(depth - 1, 0) if closing else depth + 1
        work += depth
        if work > budget:
            return text[: match.start()]
    return text
