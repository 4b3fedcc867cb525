"""Public contact channels on a page: e-mail addresses and social-network profile links.

- Emails come from ``mailto:`` hrefs (the part before "?", percent-decoded, comma-separated
  addresses each taken) and from visible text. They are lower-cased, unique and sorted. A match
  whose last label is a file extension (``logo@2x.png``) is not an address.
- Social profiles: ``{network: url}`` for twitter (twitter.com or x.com), linkedin, facebook,
  instagram, youtube, github and tiktok. Share/intent/post links are not profiles. The first
  profile link (document order, then crawl order) wins for each network.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import parse_qs, unquote, urlsplit

EMAIL_PATTERN = re.compile(
    r"(?<![A-Za-z0-9._%+-])"
    r"[A-Za-z0-9_%+-](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}"
    r"(?![A-Za-z0-9-])"
)

FILE_EXTENSIONS = frozenset(
    {
        "png", "jpg", "jpeg", "gif", "svg", "webp", "avif", "ico", "bmp", "tif", "tiff",
        "heic", "css", "js", "mjs", "cjs", "map", "json", "xml", "txt", "pdf", "mp3", "mp4",
        "webm", "ogg", "wav", "woff", "ttf", "eot", "otf", "php", "html", "htm", "aspx",
    }
)

NETWORKS = ("twitter", "linkedin", "facebook", "instagram", "youtube", "github", "tiktok")


def _plausible(address: str) -> bool:
    last_label = address.rsplit(".", 1)[-1]
    return last_label not in FILE_EXTENSIONS


# The longest match on either side of its "@": a local part of 64 characters; a domain of
# 8 labels of 63 characters and their dots, a top label of 24, and the look-ahead character.
_LOCAL_REACH = 64
_DOMAIN_REACH = 8 * 64 + 24 + 1


def emails_in_text(text: str) -> set[str]:
    """Addresses found in free text, lower-cased, file-name look-alikes dropped.

    The same matches as ``EMAIL_PATTERN.finditer(text)``, but the pattern only runs in a
    window around each "@" (every match holds one, and its local part holds none), not at
    every character of the page."""
    found = set()
    text = text or ""
    position = 0
    while (at := text.find("@", position)) >= 0:
        # Look-behind sees the text before ``pos``; ``endpos`` lies past any match using
        # this "@", so a match that starts at or before it is the one a full scan finds.
        match = EMAIL_PATTERN.search(text, max(position, at - _LOCAL_REACH),
                                     at + _DOMAIN_REACH + 1)
        if match is None or match.start() > at:
            position = at + 1
            continue
        address = match.group(0).lower()
        if _plausible(address):
            found.add(address)
        position = match.end()
    return found


def emails_from_mailto(href: str) -> set[str]:
    """Addresses of one ``mailto:`` href: before "?", percent-decoded, comma-separated."""
    if not href or not href[:7].lower() == "mailto:":
        return set()
    target = href[7:].split("?", 1)[0]
    found = set()
    for part in unquote(target, errors="replace").split(","):
        candidate = part.strip().lower()
        match = EMAIL_PATTERN.fullmatch(candidate)
        if match and _plausible(candidate):
            found.add(candidate)
    return found


def extract_emails(mailto_hrefs: Iterable[str], text: str) -> list[str]:
    """Sorted unique addresses from mailto hrefs and visible text."""
    found: set[str] = set()
    for href in mailto_hrefs:
        found |= emails_from_mailto(href)
    found |= emails_in_text(text)
    return sorted(found)


# --- social profiles -------------------------------------------------------------------------

_TWITTER_RESERVED = frozenset(
    {
        "intent", "share", "home", "search", "hashtag", "i", "login", "signup", "explore",
        "settings", "messages", "notifications", "tos", "privacy", "compose", "about",
        "download", "logout", "widgets",
    }
)
_FACEBOOK_RESERVED = frozenset(
    {
        "sharer", "sharer.php", "share", "share.php", "dialog", "plugins", "tr", "login",
        "login.php", "privacy", "policies", "policy.php", "help", "legal", "watch", "l.php",
        "home.php", "search", "hashtag", "events", "marketplace", "gaming", "business",
        "ads", "story.php", "photo.php", "permalink.php", "photo", "video.php", "reel",
    }
)
_INSTAGRAM_RESERVED = frozenset(
    {"p", "reel", "reels", "explore", "accounts", "stories", "tv", "direct", "about",
     "developer", "legal", "share", "web"}
)
_GITHUB_RESERVED = frozenset(
    {"about", "features", "pricing", "login", "join", "signup", "marketplace", "explore",
     "topics", "sponsors", "settings", "enterprise", "security", "site", "contact", "search",
     "trending", "collections", "events", "apps", "readme", "customer-stories", "team"}
)

_HANDLE_TWITTER = re.compile(r"[A-Za-z0-9_]{1,15}")
_HANDLE_INSTAGRAM = re.compile(r"[A-Za-z0-9_.]{1,30}")
_HANDLE_GITHUB = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")
_HANDLE_TIKTOK = re.compile(r"@[A-Za-z0-9_.]{1,30}")
_HANDLE_YOUTUBE = re.compile(r"@[A-Za-z0-9_.\-]{1,100}")
_SIMPLE_SEGMENT = re.compile(r"[^/]{1,200}")


def _segments(path: str) -> list[str]:
    return [unquote(s) for s in path.split("/") if s]


def _site(host: str, domains: tuple[str, ...], subdomains: tuple[str, ...]) -> bool:
    for domain in domains:
        if host == domain:
            return True
        if host.endswith("." + domain) and host[: -len(domain) - 1] in subdomains:
            return True
    return False


def _twitter(segs: list[str], query: str) -> bool:
    return (
        len(segs) == 1
        and segs[0].lower() not in _TWITTER_RESERVED
        and _HANDLE_TWITTER.fullmatch(segs[0]) is not None
    )


def _linkedin(segs: list[str], query: str) -> bool:
    return (
        len(segs) >= 2
        and segs[0].lower() in {"in", "company", "school", "showcase", "pub"}
        and _SIMPLE_SEGMENT.fullmatch(segs[1]) is not None
        and not (len(segs) > 2 and segs[2].lower() in {"posts", "share"})
    )


def _facebook(segs: list[str], query: str) -> bool:
    if not segs:
        return False
    first = segs[0].lower()
    if first == "profile.php":
        return "id" in parse_qs(query)
    if first in {"pages", "groups", "people", "pg"}:
        return len(segs) >= 2
    return len(segs) == 1 and first not in _FACEBOOK_RESERVED and not first.endswith(".php")


def _instagram(segs: list[str], query: str) -> bool:
    return (
        len(segs) == 1
        and segs[0].lower() not in _INSTAGRAM_RESERVED
        and _HANDLE_INSTAGRAM.fullmatch(segs[0]) is not None
    )


def _youtube(segs: list[str], query: str) -> bool:
    if not segs:
        return False
    first = segs[0].lower()
    if first in {"channel", "c", "user"}:
        return len(segs) >= 2
    return _HANDLE_YOUTUBE.fullmatch(segs[0]) is not None and len(segs) <= 2


def _github(segs: list[str], query: str) -> bool:
    if len(segs) == 2 and segs[0].lower() == "orgs":
        return True
    return (
        len(segs) == 1
        and segs[0].lower() not in _GITHUB_RESERVED
        and _HANDLE_GITHUB.fullmatch(segs[0]) is not None
    )


def _tiktok(segs: list[str], query: str) -> bool:
    return len(segs) == 1 and _HANDLE_TIKTOK.fullmatch(segs[0]) is not None


_COMMON_SUBS = ("www", "m", "mobile")
_RULES = (
    ("twitter", ("twitter.com", "x.com"), _COMMON_SUBS, _twitter),
    ("linkedin", ("linkedin.com",), None, _linkedin),
    ("facebook", ("facebook.com", "fb.com"), _COMMON_SUBS + ("web", "business"), _facebook),
    ("instagram", ("instagram.com",), _COMMON_SUBS, _instagram),
    ("youtube", ("youtube.com",), _COMMON_SUBS, _youtube),
    ("github", ("github.com",), ("www",), _github),
    ("tiktok", ("tiktok.com",), _COMMON_SUBS, _tiktok),
)
_LINKEDIN_SUB = re.compile(r"www|[a-z]{2}")


@lru_cache(maxsize=8192)  # pure, and a site's links recur on every page
def social_network(url: str) -> str | None:
    """The network a resolved http(s) URL is a profile on, or None (share links give None)."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not host:
        return None
    segs = _segments(parts.path)
    for network, domains, subs, matches in _RULES:
        if subs is None:  # linkedin: www or a two-letter country subdomain
            on_site = host == domains[0] or (
                host.endswith("." + domains[0])
                and _LINKEDIN_SUB.fullmatch(host[: -len(domains[0]) - 1]) is not None
            )
        else:
            on_site = _site(host, domains, subs)
        if on_site:
            return network if matches(segs, parts.query) else None
    return None


def extract_social_profiles(urls: Iterable[str]) -> dict[str, str]:
    """``{network: url}`` from resolved link URLs in document order; the first profile wins."""
    profiles: dict[str, str] = {}
    for url in urls:
        network = social_network(url)
        if network is not None and network not in profiles:
            profiles[network] = url
    return profiles
