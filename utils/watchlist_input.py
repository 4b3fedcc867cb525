"""Validation of a submitted watchlist (pure: no database, no Flask).

``validate_watchlist(payload, max_urls, current=None)`` checks a whole watchlist; for a
PATCH pass the stored values as ``current`` and only the given fields change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from analysis.ssrf import AddressParseError, IPNetwork, judge_address, parse_ip
from analysis.urls import InvalidURL, normalize_input_url
from utils.batch_input import DEFAULT_MAX_PAGES, MAX_NAME_LENGTH, MAX_PAGES_RANGE
from utils.schedule import EVERY, Schedule, valid_timezone

MIN_URLS = 2
MAX_EMAILS = 20
MAX_URL_LENGTH = 2048
EMAIL_RE = re.compile(r"^[^@\s<>,;\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
                      r"\.[A-Za-z]{2,63}$")


@dataclass
class WatchlistInput:
    """A validated watchlist, or the errors that stop it."""

    name: str = ""
    urls: list[str] = field(default_factory=list)
    own_url: str | None = None
    max_pages: int = DEFAULT_MAX_PAGES
    schedule: Schedule = field(default_factory=Schedule)
    emails: list[str] = field(default_factory=list)
    webhook_url: str | None = None
    paused: bool = False
    errors: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _urls(raw: Any, max_urls: int, errors: dict[str, Any]) -> list[str]:
    if not isinstance(raw, list):
        errors["urls"] = f"urls must be a list of {MIN_URLS} to {max_urls} URLs"
        return []
    bad: dict[str, str] = {}
    urls: list[str] = []
    for index, item in enumerate(raw):
        try:
            url = normalize_input_url(item)
        except InvalidURL as exc:
            bad[str(index)] = str(exc)
            continue
        if url not in urls:
            urls.append(url)
    if bad:
        errors["urls"] = bad
    elif not MIN_URLS <= len(urls) <= max_urls:
        errors["urls"] = f"{len(urls)} distinct URLs; a watchlist has {MIN_URLS} to {max_urls}"
    return urls


def _schedule(raw: Any, errors: dict[str, Any]) -> Schedule:
    if not isinstance(raw, dict):
        errors["schedule"] = "schedule must be an object"
        return Schedule()
    problems: dict[str, str] = {}
    every = raw.get("every", "off")
    if every not in EVERY:
        problems["every"] = "every must be off, day or week"
    hour = raw.get("hour", 6)
    if not _is_int(hour) or not 0 <= hour <= 23:
        problems["hour"] = "hour must be an integer from 0 to 23"
    weekday = raw.get("weekday")
    if every == "week" and (not _is_int(weekday) or not 0 <= weekday <= 6):
        problems["weekday"] = "a weekly schedule needs weekday 0 (Monday) to 6 (Sunday)"
    elif every != "week" and weekday is not None and (not _is_int(weekday)
                                                      or not 0 <= weekday <= 6):
        problems["weekday"] = "weekday must be an integer from 0 to 6"
    zone = raw.get("timezone", "UTC")
    if not valid_timezone(zone):
        problems["timezone"] = "timezone must be an IANA name such as Europe/Berlin"
    if problems:
        errors["schedule"] = problems
        return Schedule()
    return Schedule(every=every, hour=hour, weekday=weekday if every == "week" else None,
                    timezone=zone)


def valid_webhook_url(value: Any) -> bool:
    if not isinstance(value, str) or not value or len(value) > MAX_URL_LENGTH:
        return False
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and bool(parts.hostname) and port_ok
            and not any(c.isspace() for c in value))


def webhook_refusal(url: str, allow_networks: tuple[IPNetwork, ...] = ()) -> str | None:
    """Why the SSRF guard refuses a webhook whose host is a literal address (names are
    judged when they are resolved, on every hop, at send time)."""
    try:
        address = parse_ip(urlsplit(url).hostname or "")
    except (AddressParseError, ValueError):
        return None
    return judge_address(address, allow_networks)


def _notify(raw: Any, errors: dict[str, Any], allow_networks: tuple[IPNetwork, ...]
            ) -> tuple[list[str], str | None]:
    if not isinstance(raw, dict):
        errors["notify"] = "notify must be an object with emails and webhook_url"
        return [], None
    problems: dict[str, Any] = {}
    emails = raw.get("emails", [])
    clean: list[str] = []
    if not isinstance(emails, list) or len(emails) > MAX_EMAILS:
        problems["emails"] = f"emails must be a list of at most {MAX_EMAILS} addresses"
    else:
        bad = {str(i): "not an e-mail address" for i, e in enumerate(emails)
               if not isinstance(e, str) or not EMAIL_RE.match(e.strip())}
        if bad:
            problems["emails"] = bad
        else:
            for email in emails:
                if email.strip().lower() not in clean:
                    clean.append(email.strip().lower())
    webhook = raw.get("webhook_url")
    if webhook == "":
        webhook = None
    if webhook is not None and not valid_webhook_url(webhook):
        problems["webhook_url"] = "webhook_url must be an http(s) URL"
    elif webhook is not None and webhook_refusal(webhook, allow_networks):
        problems["webhook_url"] = f"refused: {webhook_refusal(webhook, allow_networks)}"
    if problems:
        errors["notify"] = problems
    return clean, webhook


def validate_watchlist(payload: Any, max_urls: int, current: dict[str, Any] | None = None,
                       allow_networks: tuple[IPNetwork, ...] = ()) -> WatchlistInput:
    """Check every field (``current`` supplies the ones a PATCH leaves out)."""
    result = WatchlistInput()
    if not isinstance(payload, dict):
        result.errors["body"] = "expected a JSON object"
        return result
    merged = dict(current or {})
    for key, value in payload.items():
        if key in ("schedule", "notify") and isinstance(value, dict) \
                and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    errors = result.errors
    name = merged.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
        errors["name"] = f"name must be a non-empty string of at most {MAX_NAME_LENGTH} characters"
    else:
        result.name = name.strip()
    result.urls = _urls(merged.get("urls"), max_urls, errors)
    own = merged.get("own_url")
    if own is not None:
        try:
            own_url = normalize_input_url(own)
        except InvalidURL:
            own_url = None
        if own_url is None or own_url not in result.urls:
            errors["own_url"] = "own_url must be one of urls"
        else:
            result.own_url = own_url
    max_pages = merged.get("max_pages", DEFAULT_MAX_PAGES)
    low, high = MAX_PAGES_RANGE
    if not _is_int(max_pages) or not low <= max_pages <= high:
        errors["max_pages"] = f"max_pages must be an integer from {low} to {high}"
    else:
        result.max_pages = max_pages
    result.schedule = _schedule(merged.get("schedule", {}), errors)
    result.emails, result.webhook_url = _notify(merged.get("notify", {}), errors,
                                                tuple(allow_networks))
    paused = merged.get("paused", False)
    if not isinstance(paused, bool):
        errors["paused"] = "paused must be true or false"
    else:
        result.paused = paused
    return result
