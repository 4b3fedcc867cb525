"""Facts about one HTML page, read from its bytes, final URL and response headers.

Every field follows DESIGN.md "Report field definitions (exact)". Text values (title, meta
description, h1) have entities decoded by the parser and whitespace collapsed (runs of Unicode
whitespace become one space, ends trimmed). The parser runs with scripting disabled, so the
markup inside ``<noscript>`` is parsed as elements (its ``<img>`` are counted) while its text
stays out of ``word_count`` like script, style and template text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser, LexborNode

from analysis.contacts import extract_emails, extract_social_profiles
from analysis.decoding import decode_body
from analysis.jsonld import jsonld_types
from analysis.page_links import clean_href, document_base, resolve_http, summarize_links
from analysis.parse_budget import truncate_for_parser
from analysis.technologies import detect_technologies

__all__ = ["SECURITY_HEADERS", "analyze_page", "decode_body", "normalize_headers"]

SECURITY_HEADERS = (
    "strict-transport-security",
    "content-security-policy",
    "x-frame-options",
    "x-content-type-options",
    "referrer-policy",
    "permissions-policy",
)
HIDDEN_TEXT_TAGS = ["script", "style", "noscript", "template"]
_FOREIGN_ROOTS = {"svg", "math"}
MAX_LINKS = 1000  # internal link targets kept per page (the link counts stay exact)


def collapse(text: str | None) -> str:
    """Runs of whitespace to one space, ends trimmed."""
    return " ".join((text or "").split())


def _text_or_none(text: str | None) -> str | None:
    return collapse(text) or None


def normalize_headers(headers: Iterable[Any] | None) -> list[tuple[str, str]]:
    """(name, value) string pairs from a raw header list; malformed entries are dropped."""
    result: list[tuple[str, str]] = []
    for item in headers or ():
        try:
            name, value = item
        except (TypeError, ValueError):
            continue
        if isinstance(name, bytes):
            name = name.decode("latin-1")
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if isinstance(name, str) and isinstance(value, str):
            result.append((name, value))
    return result


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.strip().lower() == name:
            return value
    return None


def security_headers(headers: list[tuple[str, str]]) -> dict[str, bool]:
    """``{name: present}`` for exactly the six security headers (lower-case keys)."""
    present = {key.strip().lower() for key, _ in headers}
    return {name: name in present for name in SECURITY_HEADERS}


def _attr(node: LexborNode, name: str) -> str | None:
    """An attribute's value ("" for a bare attribute), or None when it is absent."""
    attributes = node.attributes
    if name not in attributes:
        return None
    return attributes[name] or ""


def _in_foreign_content(node: LexborNode) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag in _FOREIGN_ROOTS:
            return True
        parent = parent.parent
    return False


def _title(tree: LexborHTMLParser) -> str | None:
    for node in tree.css("title"):
        if not _in_foreign_content(node):  # an <svg><title> is not the document title
            return _text_or_none(node.text(deep=True))
    return None


def _metas_named(tree: LexborHTMLParser, name: str) -> list[LexborNode]:
    nodes = tree.css("meta[name]")
    return [node for node in nodes if (_attr(node, "name") or "").strip().lower() == name]


def _meta_description(tree: LexborHTMLParser) -> str | None:
    nodes = _metas_named(tree, "description")
    return _text_or_none(_attr(nodes[0], "content")) if nodes else None


def _canonical(tree: LexborHTMLParser, base: str) -> str | None:
    for node in tree.css("link[rel]"):
        rels = (_attr(node, "rel") or "").lower().split()
        if "canonical" not in rels:
            continue
        href = _attr(node, "href")
        if href is None:
            return None
        try:
            return urljoin(base, clean_href(href).replace("\\", "/"))
        except ValueError:
            return None
    return None


def _lang(tree: LexborHTMLParser) -> str | None:
    root = tree.root
    if root is None or root.tag != "html":
        return None
    return _attr(root, "lang")


def _open_graph(tree: LexborHTMLParser) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in tree.css("meta[property]"):
        prop = (_attr(node, "property") or "").strip().lower()
        if prop.startswith("og:") and len(prop) > 3 and prop not in found:
            found[prop] = (_attr(node, "content") or "").strip()
    return found


def _jsonld_blocks(tree: LexborHTMLParser) -> list[str]:
    blocks = []
    for node in tree.css("script[type]"):
        essence = (_attr(node, "type") or "").split(";", 1)[0].strip().lower()
        if essence == "application/ld+json":
            blocks.append(node.text(deep=True))
    return blocks


def _images(tree: LexborHTMLParser) -> tuple[int, int]:
    images = tree.css("img")
    missing = sum(1 for node in images if "alt" not in node.attributes)
    return len(images), missing


def _visible_text(tree: LexborHTMLParser) -> str:
    """Body text outside script/style/noscript/template, text nodes joined with a space.

    Mutates the tree (strips those elements), so it runs after every other extraction.
    """
    tree.strip_tags(HIDDEN_TEXT_TAGS, recursive=True)
    body = tree.body
    return body.text(deep=True, separator=" ") if body is not None else ""


_ALNUM = re.compile(r"[^\W_]")  # in ``re``, \w is exactly str.isalnum() plus "_"


def count_words(text: str) -> int:
    """Whitespace-separated tokens that contain at least one letter or digit.

    A token that is alphanumeric as a whole is decided in one C call; only the others
    ("word.", "--") are searched for an alphanumeric character."""
    tokens = text.split()
    search = _ALNUM.search
    return len(tokens) - sum(1 for t in tokens if not t.isalnum() and search(t) is None)


def parse_html(body: bytes, content_type: str | None) -> LexborHTMLParser:
    """Decode (DESIGN.md order) and parse a body, scripting disabled as the facts assume.

    A pathologically deep document is cut where the parser's work would explode.
    """
    text = truncate_for_parser(decode_body(body, content_type))
    return LexborHTMLParser(text.encode("utf-8", "replace"))


def analyze_page(body: bytes, final_url: str, headers: list[tuple[str, str]]) -> dict:
    """Facts of one HTML page (see module docstring); ``links`` lists the first MAX_LINKS distinct
    internal targets in order (``links_total`` counts them all)."""
    pairs = normalize_headers(headers)
    tree = parse_html(body or b"", _header(pairs, "content-type"))
    base_node = tree.css_first("base[href]")
    base = document_base(_attr(base_node, "href") if base_node else None, final_url)

    hrefs = [_attr(node, "href") or "" for node in tree.css("a[href]")]
    resolved_by_href: dict[str, str | None] = {}

    def resolve(href: str, against: str) -> str | None:  # each distinct href resolved once
        if href not in resolved_by_href:
            resolved_by_href[href] = resolve_http(href, against)
        return resolved_by_href[href]

    links = summarize_links(hrefs, base, final_url, resolve)
    mailtos = [clean_href(_attr(node, "href")) for node in tree.css("a[href], area[href]")]
    resolved = [url for url in (resolve(clean_href(h), base) for h in hrefs) if url]
    images, images_missing_alt = _images(tree)
    h1 = [collapse(node.text(deep=True)) for node in tree.css("h1")]

    facts: dict[str, Any] = {
        "security_headers": security_headers(pairs),
        "title": _title(tree),
        "meta_description": _meta_description(tree),
        "canonical": _canonical(tree, base),
        "lang": _lang(tree),
        "has_viewport": bool(_metas_named(tree, "viewport")),
        "h1": h1,
        "h2_count": len(tree.css("h2")),
        "internal_links": links.internal,
        "external_links": links.external,
        "images": images,
        "images_missing_alt": images_missing_alt,
        "open_graph": _open_graph(tree),
        "jsonld_types": jsonld_types(_jsonld_blocks(tree)),
        "technologies": detect_technologies(tree, pairs),
        "social_profiles": extract_social_profiles(resolved),
        "links": links.targets[:MAX_LINKS],
        "links_total": len(links.targets),
    }
    text = _visible_text(tree)  # last: strips hidden elements from the tree
    facts["word_count"] = count_words(text)
    facts["emails"] = extract_emails([h for h in mailtos if h[:7].lower() == "mailto:"], text)
    return facts
