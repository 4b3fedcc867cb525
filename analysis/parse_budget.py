"""Bound the HTML parser's worst case: very deep nesting makes tree building quadratic.

Each block-level tag makes the parser scan the stack of open elements, so a hostile page of
100,000 nested ``<div>`` costs seconds and one of a million costs many minutes. Browsers cap
tree depth; we cannot change the parser, so we estimate its work before parsing (one linear
regex pass: depth of elements that stay open, summed over every tag) and cut the document at
the tag where the estimate passes a budget. Real pages stay orders of magnitude below it.
"""

from __future__ import annotations

import re

WORK_BUDGET = 300_000_000  # about half a second of parser work in the worst case

# A tag, and (looking no further than the next "<") whether it ends with "/>".
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]{0,30})(?:[^<>]{0,4096}?(/?)>)?")
_FOREIGN = frozenset({"svg", "math"})  # inside these, "/>" really closes the element
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
    """``text`` unchanged, or cut at the first tag where the estimated parser work passes budget."""
    depth = 0
    work = 0
    foreign = 0  # how many <svg>/<math> are open
    for match in _TAG.finditer(text):
        closing, name, self_closing = match.group(1), match.group(2).lower(), match.group(3)
        if name in _FOREIGN:
            foreign = max(foreign - 1, 0) if closing else foreign + (not self_closing)
        if closing:
            if name not in _NOT_NESTING:
                depth = max(depth - 1, 0)
        elif name not in _NOT_NESTING and not (self_closing and (foreign or name in _FOREIGN)):
            depth += 1
        work += depth
        if work > budget:
            return text[: match.start()]
    return text
