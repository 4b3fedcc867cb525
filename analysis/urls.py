"""URL normalisation shared by batch input, the crawler and the analysers."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit, urlunsplit

import idna

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_LENGTH = 2048
# After IDNA encoding a host is letters, digits, "-", "_" and non-empty dot-separated labels.
HOST_PATTERN = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")


class InvalidURL(ValueError):
    """A submitted URL that cannot be analysed; the message says why."""


def _host_to_ascii(host: str) -> str:
    host = host.strip().lower()
    if not host:
        raise InvalidURL("missing host")
    if host.startswith("["):
        return host
    ascii_host = host
    if not host.isascii():
        try:
            ascii_host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise InvalidURL(f"invalid host name: {host!r}") from exc
    ascii_host = ascii_host.rstrip(".")
    if not HOST_PATTERN.fullmatch(ascii_host):
        raise InvalidURL(f"invalid host name: {host!r}")
    return ascii_host


def _split(url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError as exc:
        raise InvalidURL(f"malformed URL: {exc}") from exc


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, drop the default port and the fragment, empty path -> '/'.

    Raises InvalidURL for a URL that cannot be parsed.
    """
    parts = _split(url.strip())
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    host = _host_to_ascii(host) if host else ""
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"invalid port in {url!r}") from exc
    netloc = host
    if port is not None and DEFAULT_PORTS.get(scheme) != port:
        netloc = f"{host}:{port}"
    if parts.username:
        userinfo = parts.username + (f":{parts.password}" if parts.password else "")
        netloc = f"{userinfo}@{netloc}"
    path = parts.path or "/"
    return urlunsplit(SplitResult(scheme, netloc, path, parts.query, ""))


def normalize_input_url(raw: str) -> str:
    """Turn what a user typed into an absolute http(s) URL, or raise InvalidURL naming the cause.

    A missing scheme becomes https; IDN hosts become punycode; the result is canonical.
    """
    if not isinstance(raw, str):
        raise InvalidURL("URL must be a string")
    text = raw.strip()
    if not text:
        raise InvalidURL("empty URL")
    if len(text) > MAX_URL_LENGTH:
        raise InvalidURL(f"URL longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() for ch in text) or any(ord(ch) < 32 for ch in text):
        raise InvalidURL("URL contains whitespace or control characters")
    if "://" not in text:
        if text.startswith("//"):
            text = "https:" + text
        else:
            text = "https://" + text
    parts = _split(text)
    if parts.scheme.lower() not in DEFAULT_PORTS:
        raise InvalidURL(f"unsupported scheme {parts.scheme!r}: only http and https")
    try:
        host = parts.hostname
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise InvalidURL(f"malformed URL: {exc}") from exc
    if not host:
        raise InvalidURL("missing host")
    if not host.startswith("[") and ":" not in host:
        label_ok = all(0 < len(label) <= 63 for label in host.rstrip(".").split("."))
        if not label_ok:
            raise InvalidURL(f"invalid host name: {host!r}")
    return canonical_url(text)


def origin_of(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL: the unit of politeness."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or DEFAULT_PORTS.get(scheme, 0)
    return scheme, (parts.hostname or "").lower(), port
