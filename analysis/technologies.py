"""Technology detection from the project's own fingerprints (analysis/data/fingerprints.json).

Evidence is read from: response headers, Set-Cookie names, <meta name=... content=...>
(generator and friends), <script src>, <link href>, inline <script> text and DOM markers
(CSS selectors such as ``[ng-version]`` or ``script#__NEXT_DATA__``). An ``<a href>`` is never
evidence: linking to another site's ``jquery.min.js`` does not mean this site runs jQuery.
The result is a sorted list of names, without versions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

FINGERPRINTS_PATH = Path(__file__).parent / "data" / "fingerprints.json"
MAX_INLINE_SCRIPT_CHARS = 2_000_000  # bounded regex work on huge inline data blobs

Pattern = re.Pattern[str]


@dataclass(frozen=True)
class Fingerprint:
    """Compiled evidence rules for one technology; a pattern of None means 'present'."""

    name: str
    headers: tuple[tuple[str, Pattern | None], ...] = ()
    meta: tuple[tuple[str, Pattern | None], ...] = ()
    cookies: tuple[Pattern, ...] = ()
    script_src: tuple[Pattern, ...] = ()
    link_href: tuple[Pattern, ...] = ()
    script: tuple[Pattern, ...] = ()
    dom: tuple[str, ...] = ()
    implies: tuple[str, ...] = ()


@dataclass
class PageEvidence:
    """What one response offers as evidence (all names lower-case)."""

    headers: list[tuple[str, str]] = field(default_factory=list)
    cookies: list[str] = field(default_factory=list)
    meta: list[tuple[str, str]] = field(default_factory=list)
    script_srcs: list[str] = field(default_factory=list)
    link_hrefs: list[str] = field(default_factory=list)
    inline_script: str = ""
    tree: LexborHTMLParser | None = None


def _compile(pattern: str) -> Pattern | None:
    return re.compile(pattern, re.IGNORECASE) if pattern else None


def _compile_all(patterns: Iterable[str]) -> tuple[Pattern, ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


def _compile_pairs(rules: dict[str, str]) -> tuple[tuple[str, Pattern | None], ...]:
    return tuple((name.lower(), _compile(pattern)) for name, pattern in rules.items())


def parse_fingerprints(data: dict) -> tuple[Fingerprint, ...]:
    """Compile the JSON fingerprint document (``{"technologies": {name: rules}}``)."""
    result = []
    for name, rules in data["technologies"].items():
        result.append(
            Fingerprint(
                name=name,
                headers=_compile_pairs(rules.get("headers", {})),
                meta=_compile_pairs(rules.get("meta", {})),
                cookies=_compile_all(rules.get("cookies", ())),
                script_src=_compile_all(rules.get("script_src", ())),
                link_href=_compile_all(rules.get("link_href", ())),
                script=_compile_all(rules.get("script", ())),
                dom=tuple(rules.get("dom", ())),
                implies=tuple(rules.get("implies", ())),
            )
        )
    return tuple(result)


@lru_cache(maxsize=1)
def load_fingerprints() -> tuple[Fingerprint, ...]:
    """The project's fingerprints, compiled once per process."""
    with FINGERPRINTS_PATH.open(encoding="utf-8") as handle:
        return parse_fingerprints(json.load(handle))


def collect_evidence(tree: LexborHTMLParser, headers: list[tuple[str, str]]) -> PageEvidence:
    """Gather evidence from a parsed page and its (name, value) response headers."""
    evidence = PageEvidence(tree=tree)
    for name, value in headers:
        lname = name.strip().lower()
        evidence.headers.append((lname, value))
        if lname == "set-cookie":
            cookie_name = value.split("=", 1)[0].strip()
            if cookie_name:
                evidence.cookies.append(cookie_name)
    for node in tree.css("meta[name]"):
        meta_name = (node.attributes.get("name") or "").strip().lower()
        evidence.meta.append((meta_name, node.attributes.get("content") or ""))
    for node in tree.css("script[src]"):
        evidence.script_srcs.append((node.attributes.get("src") or "").strip())
    for node in tree.css("link[href]"):
        evidence.link_hrefs.append((node.attributes.get("href") or "").strip())
    chunks, size = [], 0
    for node in tree.css("script:not([src])"):
        text = node.text(deep=True)
        if size + len(text) > MAX_INLINE_SCRIPT_CHARS:
            text = text[: MAX_INLINE_SCRIPT_CHARS - size]
        chunks.append(text)
        size += len(text)
        if size >= MAX_INLINE_SCRIPT_CHARS:
            break
    evidence.inline_script = "\n".join(chunks)
    return evidence


def _pairs_match(
    rules: tuple[tuple[str, Pattern | None], ...], pairs: list[tuple[str, str]]
) -> bool:
    for rule_name, pattern in rules:
        for name, value in pairs:
            if name == rule_name and (pattern is None or pattern.search(value)):
                return True
    return False


def _any_search(patterns: tuple[Pattern, ...], values: list[str]) -> bool:
    return any(p.search(v) for p in patterns for v in values)


def _matches(fp: Fingerprint, ev: PageEvidence) -> bool:
    if _pairs_match(fp.headers, ev.headers) or _pairs_match(fp.meta, ev.meta):
        return True
    if _any_search(fp.cookies, ev.cookies) or _any_search(fp.script_src, ev.script_srcs):
        return True
    if _any_search(fp.link_href, ev.link_hrefs):
        return True
    if ev.inline_script and any(p.search(ev.inline_script) for p in fp.script):
        return True
    if ev.tree is not None:
        return any(ev.tree.css_first(selector) is not None for selector in fp.dom)
    return False


def match_technologies(
    evidence: PageEvidence, fingerprints: tuple[Fingerprint, ...] | None = None
) -> list[str]:
    """Sorted names whose fingerprints match the evidence, implied technologies included."""
    fingerprints = load_fingerprints() if fingerprints is None else fingerprints
    by_name = {fp.name: fp for fp in fingerprints}
    found = {fp.name for fp in fingerprints if _matches(fp, evidence)}
    pending = list(found)
    while pending:
        fp = by_name.get(pending.pop())
        for implied in fp.implies if fp else ():
            if implied not in found:
                found.add(implied)
                pending.append(implied)
    return sorted(found)


def detect_technologies(tree: LexborHTMLParser, headers: list[tuple[str, str]]) -> list[str]:
    """Sorted technology names for a parsed page and its response headers."""
    return match_technologies(collect_evidence(tree, headers))
