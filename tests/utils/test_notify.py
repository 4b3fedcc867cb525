"""Delivery helpers: signatures, digests, SMTP settings errors (real sockets on 127.0.0.1)."""

from __future__ import annotations

import socket

import pytest

from utils.notify import NotifyError, deliver, digest_html, digest_text, sign, verify

PAYLOAD = {"id": 1, "channel": "email", "target": "a@example.test", "batch_id": 7,
           "attempts": 0,
           "watchlist": {"id": 3, "name": "<Rivals>", "webhook_secret": "k",
                         "emails": ["a@example.test"]},
           "changes": [{"site_url": "https://a.example/", "kind": "title",
                        "before": "Old", "after": "<b>New</b>"}]}


def test_signature_round_trip_and_tampering():
    body = b'{"a": 1}'
    header = sign("secret", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify("secret", body, header)
    assert not verify("secret", body + b" ", header)
    assert not verify("other", body, header) and not verify("secret", body, None)


def test_digest_parts_escape_and_link():
    text = digest_text(PAYLOAD, "http://r.test/watchlists/3")
    page = digest_html(PAYLOAD, "http://r.test/watchlists/3")
    assert "https://a.example/: title: 'Old' → '<b>New</b>'" in text
    assert "<b>New</b>" not in page and "&lt;b&gt;New&lt;/b&gt;" in page
    assert "&lt;Rivals&gt;" in page and 'href="http://r.test/watchlists/3"' in page


@pytest.mark.parametrize(("url", "reason"), [
    ("", "SMTP_URL is not set"),
    ("http://127.0.0.1:25", "SMTP_URL must be"),
])
def test_bad_smtp_settings_fail_clearly(url, reason, monkeypatch):
    monkeypatch.delenv("SMTP_URL", raising=False)
    with pytest.raises(NotifyError, match=reason):
        deliver(PAYLOAD, {"SMTP_URL": url})


def test_unreachable_smtp_server_is_a_delivery_error():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(NotifyError, match="SMTP"):
        deliver(PAYLOAD, {"SMTP_URL": f"smtp://127.0.0.1:{port}"})


def test_nothing_is_sent_without_changes():
    deliver(dict(PAYLOAD, changes=[]), {"SMTP_URL": ""})  # no error: nothing to send
