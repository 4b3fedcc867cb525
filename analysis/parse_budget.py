"""Bound the HTML parser's worst case before parsing: an estimate of its work, and a cut.

Tree building costs the parser a scan of the stack of open elements per tag, so a hostile
page of 100,000 nested elements costs minutes. Lexbor is also quadratic in the number of
``<option>`` elements of one ``<select>`` (closed or not), and ``<rb>``/``<rp>``/``<rt>``/
``<rtc>``/``<optgroup>`` nest like any element outside ``<ruby>``/``<select>``. We cannot change
the parser, so one linear pass models its stack of open elements (implied end tags included)
and sums the work; the document is cut at the tag where the estimate passes a budget. Real
pages stay orders of magnitude below it.

This is the first line of defence; the hard one is the killable analysis process
(:mod:`analysis.page_budget`), which stops whatever this model misjudges.
"""

from __future__ import annotations

import re
from collections import Counter

WORK_BUDGET = 100_000_000  # about a third of a second of parser work in the worst case
OPTION_WEIGHT = 3  # each <option> of a <select> costs about this much per earlier option

# A tag, and (looking no further than the next "<") whether it ends with "/>".
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]{0,30})(?:[^<>]{0,4096}?(/?)>)?")
_FOREIGN = frozenset({"svg", "math"})  # inside these, "/>" really closes the element
_VOID = frozenset(
    {
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr", "keygen", "image",
    }
)
# Elements the parser closes when a sibling starts (measured: they never deepen the tree).
_SIBLINGS = frozenset({"tr", "td", "th", "thead", "tbody", "tfoot", "caption", "colgroup"})
# Elements a sibling closes only when it is (nearly) the current node; modelled as such.
_LIST_ITEMS = {"li": ("li",), "dd": ("dd", "dt"), "dt": ("dd", "dt"), "p": ("p",)}
_PHRASING = frozenset(
    {"a", "b", "i", "em", "strong", "span", "font", "small", "big", "u", "s", "code", "tt",
     "nobr", "label", "abbr", "cite", "q", "sub", "sup", "mark", "time", "strike"}
)
_LIST_THROUGH = _PHRASING | {"p", "div", "address"}
# Elements an end tag does not close through (the parser's scope boundaries).
_BOUNDARIES = frozenset(
    {"table", "td", "th", "caption", "template", "applet", "object", "marquee", "button",
     "svg", "math", "foreignobject", "select"}
)
_IGNORED = frozenset({"html", "head", "body"})  # never change the stack once the body is open
_SCAN = 8  # how far below the current node the model looks
_RUBY_PARTS = ("rb", "rp", "rt", "rtc")


class _Model:
    """A cheap model of the parser's stack of open elements."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.open: Counter[str] = Counter()
        self.options = 0  # options seen in the innermost open <select>

    def _push(self, name: str) -> None:
        self.stack.append(name)
        self.open[name] += 1

    def _pop(self) -> str:
        name = self.stack.pop()
        self.open[name] -= 1
        if name == "select":
            self.options = 0
        return name

    def _pop_while_top(self, names: tuple[str, ...]) -> None:
        while self.stack and self.stack[-1] in names:
            self._pop()

    def _find(self, names: tuple[str, ...], through: frozenset[str] | None) -> int:
        """Index of the nearest open element named in ``names`` (within _SCAN, passing only
        ``through`` elements when given, never a boundary), or -1."""
        stack = self.stack
        for index in range(len(stack) - 1, max(-1, len(stack) - 1 - _SCAN), -1):
            name = stack[index]
            if name in names:
                return index
            if name in _BOUNDARIES or (through is not None and name not in through):
                return -1
        return -1

    def _pop_to(self, index: int) -> None:
        while len(self.stack) > index:
            self._pop()

    def close(self, name: str) -> None:
        """An end tag: pop up to the open element it names (ignored if none is near)."""
        if self.open[name] > 0 and name not in _IGNORED:
            index = self._find((name,), None)
            if index >= 0:
                self._pop_to(index)

    def start(self, name: str) -> int:
        """A start tag that may hold children; returns the extra work it costs."""
        extra = 0
        if name == "option":
            self._pop_while_top(("option",))
            if self.open["select"]:
                extra = OPTION_WEIGHT * self.options
                self.options += 1
        elif name == "optgroup":
            self._pop_while_top(("option", "optgroup") if self.open["select"] else ("option",))
        elif name in _RUBY_PARTS and self.open["ruby"]:
            self._pop_while_top(_RUBY_PARTS if name in ("rb", "rtc") else ("rb", "rp", "rt"))
        elif name == "select":
            if self.open["select"]:  # a <select> inside a select closes it instead
                self.close("select")
                return 0
            self.options = 0
        elif name in _LIST_ITEMS:
            siblings = _LIST_ITEMS[name]
            if any(self.open[sibling] for sibling in siblings):
                index = self._find(siblings, None if name == "p" else _LIST_THROUGH)
                if index >= 0:
                    self._pop_to(index)
        if name not in _SIBLINGS and name not in _IGNORED:
            self._push(name)
        return extra


def truncate_for_parser(text: str, budget: int = WORK_BUDGET) -> str:
    """``text`` unchanged, or cut at the first tag where the estimated parser work passes budget."""
    # Each of T tags adds at most T (the stack) + OPTION_WEIGHT * T (earlier options), so a
    # page with few tags (every real one) cannot pass the budget: skip the model.
    tags = text.count("<")
    if (OPTION_WEIGHT + 1) * tags * tags <= budget:
        return text
    model = _Model()
    work = 0
    foreign = 0  # how many <svg>/<math> are open
    for match in _TAG.finditer(text):
        closing, name, self_closing = match.group(1), match.group(2).lower(), match.group(3)
        if name in _FOREIGN:
            foreign = max(foreign - 1, 0) if closing else foreign + (not self_closing)
        if closing:
            model.close(name)
        elif name not in _VOID and not (self_closing and (foreign or name in _FOREIGN)):
            work += model.start(name)
        work += len(model.stack)
        if work > budget:
            return text[: match.start()]
    return text
