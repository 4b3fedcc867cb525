"""Sitemaps: follow indexes, read gzip, count distinct page URLs.

Every sitemap file is fetched at most once (an index that lists itself, or two indexes that
list each other, cannot loop), index nesting is bounded, and each file is bounded in size
(after decompression too). The XML parser neither loads DTDs, nor resolves entities, nor
touches the network.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from lxml import etree

from analysis.body_decoding import BadEncoding, BodyTooLarge, gunzip_bounded
from analysis.fetcher import Fetcher, SlotProvider
from analysis.urls import canonical_url


@dataclass(frozen=True)
class SitemapLimits:
    """Bounds on sitemap discovery."""

    max_files: int = 25
    max_depth: int = 3
    max_bytes: int = 20 * 1024 * 1024
    max_urls: int = 200_000


@dataclass
class ParsedSitemap:
    """One file: either page URLs (a urlset or a text sitemap) or child sitemaps (an index)."""

    kind: str  # "urlset", "index", "text" or "invalid"
    locs: list[str]


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1].lower()


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        recover=True,
        remove_comments=True,
        remove_pis=True,
    )


def _text_sitemap(data: bytes) -> list[str]:
    lines = data.decode("utf-8", errors="replace").splitlines()
    urls = [line.strip() for line in lines if line.strip()]
    if urls and all(u.lower().startswith(("http://", "https://")) for u in urls):
        return urls
    return []


def parse_sitemap(data: bytes) -> ParsedSitemap:
    """Classify and read one sitemap file (already decompressed)."""
    stripped = data.lstrip()
    if not stripped.startswith(b"<"):
        urls = _text_sitemap(data)
        return ParsedSitemap("text" if urls else "invalid", urls)
    try:
        root = etree.fromstring(stripped, _parser())
    except etree.XMLSyntaxError:
        root = None
    if root is None:
        return ParsedSitemap("invalid", [])
    kind = _local(root.tag)
    child_name = {"urlset": "url", "sitemapindex": "sitemap"}.get(kind)
    if child_name is None:
        return ParsedSitemap("invalid", [])
    locs: list[str] = []
    for child in root:
        if _local(child.tag) != child_name:
            continue
        for item in child:
            if _local(item.tag) == "loc" and item.text and item.text.strip():
                locs.append(item.text.strip())
                break
    return ParsedSitemap("urlset" if kind == "urlset" else "index", locs)


def _key(url: str) -> str:
    try:
        return canonical_url(url)
    except ValueError:
        return url


def collect_sitemaps(
    start_urls: Iterable[str],
    fetcher: Fetcher,
    politeness: SlotProvider | None = None,
    *,
    limits: SitemapLimits | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict:
    """Read the sitemaps reachable from ``start_urls``; returns ``{"found", "url_count"}``.

    ``found`` is True when at least one file parsed as a sitemap; ``url_count`` is the
    number of distinct page URLs over every urlset reached (bounded by ``limits.max_urls``).
    """
    limits = limits or SitemapLimits()
    queue: deque[tuple[str, int]] = deque()
    seen: set[str] = set()
    for url in start_urls:
        key = _key(url)
        if key not in seen:
            seen.add(key)
            queue.append((url, 0))
    pages: set[str] = set()
    found = False
    fetched = 0
    while queue and fetched < limits.max_files and not should_stop():
        url, depth = queue.popleft()
        fetched += 1
        result = fetcher.fetch(url, politeness=politeness, max_bytes=limits.max_bytes)
        if result.error is not None:
            continue
        data = result.body
        if data[:2] == b"\x1f\x8b":
            try:
                data = gunzip_bounded(data, limits.max_bytes)
            except (BadEncoding, BodyTooLarge):
                continue
        parsed = parse_sitemap(data)
        if parsed.kind == "invalid":
            continue
        found = True
        if parsed.kind == "index":
            if depth >= limits.max_depth:
                continue
            for loc in parsed.locs:
                key = _key(loc)
                if key not in seen:
                    seen.add(key)
                    queue.append((loc, depth + 1))
            continue
        for loc in parsed.locs:
            if len(pages) >= limits.max_urls:
                break
            pages.add(_key(loc))
    return {"found": found, "url_count": len(pages)}
