"""Digest delivery: e-mail through ``SMTP_URL`` and signed webhooks through the SSRF guard.

Nothing here touches the database: the task reads a plain payload, ends its transaction,
calls :func:`send_notification`, then records the outcome.

Webhook bodies are signed with HMAC-SHA256 over the raw body, sent as
``X-Rivalscope-Signature: sha256=<hex>``. Every hop (redirects included) connects through
the crawler's guarded network backend, so a webhook can never reach an address a crawl
could not.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import os
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

import httpx

from analysis.changes import summary
from analysis.fetcher import FetchConfig, _GuardedTransport
from analysis.guarded_network import BlockedAddress, GuardedBackend, deadline
from analysis.ssrf import AddressParseError, judge_address, parse_allow_networks, parse_ip

SIGNATURE_HEADER = "X-Rivalscope-Signature"
USER_AGENT = "Rivalscope-Webhook/1.0"
MAX_REDIRECTS = 5
TIMEOUT_SECONDS = 15.0
REDIRECTS = (301, 302, 303, 307, 308)


class NotifyError(Exception):
    """A delivery failed; ``str(exc)`` is the reason shown on the watchlist page."""


def setting(config: Mapping[str, Any], name: str, default: str = "") -> str:
    """A notification setting from the app config, else the environment."""
    return str(config.get(name) or os.environ.get(name, default) or default)


def timeline_url(config: Mapping[str, Any], watchlist_id: int) -> str:
    base = setting(config, "PUBLIC_BASE_URL", "http://localhost:5000").rstrip("/")
    return f"{base}/watchlists/{watchlist_id}"


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does: compare in constant time."""
    return bool(header) and hmac.compare_digest(sign(secret, body), header or "")


def digest_text(payload: Mapping[str, Any], link: str) -> str:
    watchlist = payload["watchlist"]
    lines = [f"Rivalscope: {len(payload['changes'])} change(s) on watchlist "
             f"\"{watchlist['name']}\"", ""]
    for change in payload["changes"]:
        lines.append(f"- {change['site_url']}: {summary(change)}")
    lines += ["", f"Timeline: {link}", ""]
    return "\n".join(lines)


def digest_html(payload: Mapping[str, Any], link: str) -> str:
    watchlist = payload["watchlist"]
    items = "".join(
        f"<li><strong>{html.escape(c['site_url'])}</strong> "
        f"<code>{html.escape(c['kind'])}</code>: {html.escape(summary(c))}</li>"
        for c in payload["changes"])
    return (f"<!doctype html><html><body><h1>{len(payload['changes'])} change(s) on "
            f"{html.escape(watchlist['name'])}</h1><ul>{items}</ul>"
            f"<p><a href=\"{html.escape(link)}\">Open the timeline</a></p></body></html>")


def send_email(payload: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """One multipart (text + HTML) digest to the watchlist's addresses."""
    url = setting(config, "SMTP_URL")
    if not url:
        raise NotifyError("SMTP_URL is not set")
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise NotifyError("SMTP_URL must be smtp://[user:password@]host[:port] or smtps://")
    link = timeline_url(config, payload["watchlist"]["id"])
    message = EmailMessage()
    message["Subject"] = (f"[Rivalscope] {len(payload['changes'])} change(s) on "
                          f"{payload['watchlist']['name']}")
    message["From"] = setting(config, "MAIL_FROM", "rivalscope@localhost")
    message["To"] = ", ".join(payload["watchlist"]["emails"] or payload["target"].split(", "))
    message.set_content(digest_text(payload, link))
    message.add_alternative(digest_html(payload, link), subtype="html")
    secure = parts.scheme == "smtps"
    port = parts.port or (465 if secure else 25)
    try:
        # SMTP_CA_FILE: an extra trusted CA (an intranet relay); certificates are verified.
        context = ssl.create_default_context(cafile=setting(config, "SMTP_CA_FILE") or None)
        if secure:
            client: smtplib.SMTP = smtplib.SMTP_SSL(parts.hostname, port,
                                                    timeout=TIMEOUT_SECONDS, context=context)
        else:
            client = smtplib.SMTP(parts.hostname, port, timeout=TIMEOUT_SECONDS)
        with client:
            if not secure and parse_qs(parts.query).get("starttls") == ["1"]:
                client.starttls(context=context)
            if parts.username:
                client.login(unquote(parts.username), unquote(parts.password or ""))
            client.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise NotifyError(f"SMTP: {type(exc).__name__}: {exc}"[:500]) from None


def webhook_body(payload: Mapping[str, Any], config: Mapping[str, Any]) -> bytes:
    watchlist = payload["watchlist"]
    return json.dumps({
        "event": "watchlist.changes",
        "watchlist": {"id": watchlist["id"], "name": watchlist["name"]},
        "batch_id": payload["batch_id"],
        "timeline_url": timeline_url(config, watchlist["id"]),
        "changes": payload["changes"],
    }, sort_keys=True).encode()


def _precheck(url: str, allow: tuple) -> None:
    host = urlsplit(url).hostname or ""
    try:
        address = parse_ip(host)
    except AddressParseError:
        return
    reason = judge_address(address, allow)
    if reason is not None:
        raise NotifyError(f"webhook refused: {reason}")


def send_webhook(payload: Mapping[str, Any], config: Mapping[str, Any],
                 allow_networks: str | None = None) -> None:
    """POST the signed digest; redirects are followed (POST kept), each hop guarded."""
    secret = payload["watchlist"].get("webhook_secret") or ""
    body = webhook_body(payload, config)
    allow = tuple(parse_allow_networks(
        allow_networks if allow_networks is not None
        else setting(config, "FETCH_ALLOW_NETWORKS")))
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               SIGNATURE_HEADER: sign(secret, body),
               "X-Rivalscope-Event": "watchlist.changes"}
    fetch_config = FetchConfig(allow_networks=allow, max_connections=2)
    transport = _GuardedTransport(fetch_config, GuardedBackend(allow))
    url = payload["target"]
    with httpx.Client(transport=transport, follow_redirects=False, trust_env=False,
                      timeout=httpx.Timeout(10.0, connect=5.0)) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            if urlsplit(url).scheme not in ("http", "https"):
                raise NotifyError("webhook redirected to a non-http(s) URL")
            _precheck(url, allow)
            try:
                with deadline(TIMEOUT_SECONDS), client.stream(
                        "POST", url, content=body, headers=headers) as response:
                    status = response.status_code  # the answer's body is never read
                    location = response.headers.get("location")
            except BlockedAddress as exc:
                raise NotifyError(f"webhook refused: {exc}") from None
            except (httpx.HTTPError, OSError) as exc:
                raise NotifyError(f"webhook: {type(exc).__name__}: {exc}"[:500]) from None
            if status in REDIRECTS and location:
                url = urljoin(url, location)
                continue
            if 200 <= status < 300:
                return
            raise NotifyError(f"webhook answered HTTP {status}")
    raise NotifyError(f"webhook: more than {MAX_REDIRECTS} redirects")


def deliver(payload: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """Deliver one digest (raises NotifyError with the reason)."""
    if not payload.get("changes"):
        return
    if payload["channel"] == "email":
        send_email(payload, config)
    else:
        send_webhook(payload, config)
