"""Resolve <a href> values the way browsers do and sort them into internal and external links.

Rules (DESIGN.md "Report field definitions (exact)"): an href counts only when it resolves to
http(s); it is internal when host and port equal the final URL's; a fragment-only href is
internal; mailto:, tel:, javascript:, data: (any non-http(s) scheme) are neither.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from analysis.urls import DEFAULT_PORTS, InvalidURL, canonical_url

_STRIP = "".join(chr(c) for c in range(0x21))  # C0 controls and space, stripped at both ends
_INNER_NOISE = re.compile(r"[\t\n\r]")  # removed anywhere, as the URL Standard does
_UNSAFE = re.compile(r'[^\x21-\x7e]|["<>`]')  # what browsers percent-encode in path and query


def _encode_unsafe(text: str) -> str:
    return _UNSAFE.sub(lambda m: quote(m.group(0), safe=""), text)


def clean_href(raw: str | None) -> str:
    """An attribute value as a browser reads it: trimmed, tabs/newlines removed."""
    if not raw:
        return ""
    return _INNER_NOISE.sub("", raw.strip(_STRIP))


@lru_cache(maxsize=8192)
def host_port(url: str) -> tuple[str, int] | None:
    """(host, effective port) of a canonical http(s) URL, or None if it has neither."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return host, port if port is not None else DEFAULT_PORTS[scheme]


# The same absolute targets recur on every page of a site (navigation, footers), and an
# analysis process serves many pages: their canonical spelling is worked out once.
@lru_cache(maxsize=8192)
def _canonical_http(absolute: str) -> str | None:
    try:
        if urlsplit(absolute).scheme.lower() not in DEFAULT_PORTS:
            return None
        parts = urlsplit(canonical_url(absolute))
        url = urlunsplit(
            parts._replace(path=_encode_unsafe(parts.path), query=_encode_unsafe(parts.query))
        )
    except (ValueError, InvalidURL, UnicodeError):
        return None
    return url if host_port(url) is not None else None


def resolve_http(href: str, base: str) -> str | None:
    """Resolve a cleaned href against base; the canonical http(s) URL, or None if it is not one.

    Spaces, controls, non-ASCII and ``"<>`` ` in path and query are percent-encoded (UTF-8), as
    browsers do, so one target has one spelling.
    """
    # Special (http/https) URLs treat a backslash as a slash; our bases are always http(s).
    href = (href or "").replace("\\", "/")
    try:
        absolute = urljoin(base, href)
    except (ValueError, UnicodeError):
        return None
    return _canonical_http(absolute)


def document_base(base_href: str | None, final_url: str) -> str:
    """The URL relative hrefs resolve against: <base href> (if it resolves to http(s)) or final."""
    if base_href is not None:
        href = clean_href(base_href).replace("\\", "/")
        try:
            absolute = urljoin(final_url, href)
            if urlsplit(absolute).scheme.lower() in DEFAULT_PORTS and host_port(absolute):
                return absolute
        except ValueError:
            pass
    return final_url


@dataclass
class LinkSummary:
    """Counts of internal/external <a href> links and the distinct internal targets in order."""

    internal: int = 0
    external: int = 0
    targets: list[str] = field(default_factory=list)


def summarize_links(hrefs: list[str], base: str, final_url: str,
                    resolve: Callable[[str, str], str | None] = resolve_http) -> LinkSummary:
    """Classify raw <a href> values (document order, duplicates kept) against the final URL.
    ``resolve`` is ``resolve_http`` or a caching wrapper of it."""
    summary = LinkSummary()
    own = host_port(final_url)
    try:
        own_page = canonical_url(final_url)
    except (ValueError, InvalidURL, UnicodeError):
        own_page = None
    seen: set[str] = set()
    for raw in hrefs:
        href = clean_href(raw)
        if href.startswith("#"):
            target = own_page
            summary.internal += 1
        else:
            target = resolve(href, base)
            if target is None:
                continue
            if own is not None and host_port(target) == own:
                summary.internal += 1
            else:
                summary.external += 1
                continue
        if target is not None and target not in seen:
            seen.add(target)
            summary.targets.append(target)
    return summary
