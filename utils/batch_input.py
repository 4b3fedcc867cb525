"""Validation of a submitted batch: names, URL lists and max_pages (pure, no database)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analysis.urls import InvalidURL, normalize_input_url

MAX_PAGES_RANGE = (1, 200)
DEFAULT_MAX_PAGES = 10
MAX_NAME_LENGTH = 200


@dataclass
class BatchInput:
    """A validated batch, or the errors that stop it."""

    name: str = ""
    urls: list[str] = field(default_factory=list)
    max_pages: int = DEFAULT_MAX_PAGES
    errors: dict[str, Any] = field(default_factory=dict)
    scheme_guessed: set[str] = field(default_factory=set)  # typed without http(s)://

    @property
    def ok(self) -> bool:
        return not self.errors


def split_url_text(text: str) -> list[str]:
    """Split a textarea: one URL per line or comma-separated; blank lines ignored."""
    items = []
    for line in text.replace("\r", "\n").split("\n"):
        items.extend(part.strip() for part in line.split(","))
    return [item for item in items if item]


def validate_batch(payload: Any, max_urls: int) -> BatchInput:
    """Check name, urls and max_pages; URL errors are keyed by the URL's index."""
    result = BatchInput()
    if not isinstance(payload, dict):
        result.errors["body"] = "expected a JSON object"
        return result
    name = payload.get("name", "")
    if name is None:
        name = ""
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH:
        result.errors["name"] = f"name must be a string of at most {MAX_NAME_LENGTH} characters"
    else:
        result.name = name.strip()
    max_pages = payload.get("max_pages", DEFAULT_MAX_PAGES)
    low, high = MAX_PAGES_RANGE
    valid = isinstance(max_pages, int) and not isinstance(max_pages, bool)
    if not valid or not low <= max_pages <= high:
        result.errors["max_pages"] = f"max_pages must be an integer from {low} to {high}"
    else:
        result.max_pages = max_pages
    urls = payload.get("urls")
    if not isinstance(urls, list) or not urls:
        result.errors["urls"] = "urls must be a non-empty list of strings"
        return result
    bad: dict[str, str] = {}
    seen: set[str] = set()
    for index, raw in enumerate(urls):
        try:
            url = normalize_input_url(raw)
        except InvalidURL as exc:
            bad[str(index)] = str(exc)
            continue
        if url not in seen:
            seen.add(url)
            result.urls.append(url)
            if "://" not in raw:
                result.scheme_guessed.add(url)
        elif "://" in raw:
            result.scheme_guessed.discard(url)  # typed with its scheme somewhere: no guess
    if bad:
        result.errors["urls"] = bad
    elif len(result.urls) > max_urls:
        result.errors["urls"] = (f"{len(result.urls)} distinct URLs; at most {max_urls} "
                                 "per batch")
    if not result.name and not result.errors:
        result.name = ", ".join(u.split("//", 1)[1].rstrip("/") for u in result.urls[:3])[:200]
    return result


def validate_own_url(payload: Any, urls: list[str]) -> tuple[str | None, dict[str, Any]]:
    """The optional ``own_url`` ("your site"): one of ``urls`` after normalisation.

    Returns (the normalised URL or None, errors keyed "own_url")."""
    raw = payload.get("own_url") if isinstance(payload, dict) else None
    if raw is None or raw == "":
        return None, {}
    if not isinstance(raw, str):
        return None, {"own_url": "own_url must be a string: one of urls"}
    try:
        url = normalize_input_url(raw)
    except InvalidURL as exc:
        return None, {"own_url": f"own_url is not a valid URL: {exc}"}
    if url not in urls:
        return None, {"own_url": f"own_url must be one of urls (after normalisation: {url})"}
    return url, {}
