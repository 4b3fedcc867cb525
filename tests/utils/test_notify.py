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


def _self_signed(folder) -> tuple[str, str]:
    """A certificate for 127.0.0.1 made with the openssl CLI (the test skips without it)."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return str(cert), str(key)


def test_smtps_with_login_verifies_the_certificate(tmp_path):
    import email
    import email.policy
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    from tests.conftest import free_port

    cert, key = _self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            received.append((session.auth_data, envelope))
            return "250 OK"

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"pw"
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port,
                            ssl_context=server_context, authenticator=authenticate,
                            auth_require_tls=False)  # aiosmtpd counts only STARTTLS as TLS
    controller.start()
    try:
        url = f"smtps://mailer:pw@127.0.0.1:{port}"
        with pytest.raises(NotifyError, match="SSL|certificate"):
            deliver(PAYLOAD, {"SMTP_URL": url})  # self-signed: refused without its CA
        assert received == []
        deliver(PAYLOAD, {"SMTP_URL": url, "SMTP_CA_FILE": cert})
        with pytest.raises(NotifyError, match="SMTP"):
            deliver(PAYLOAD, {"SMTP_URL": url.replace(":pw@", ":wrong@"),
                              "SMTP_CA_FILE": cert})
    finally:
        controller.stop()
    assert len(received) == 1
    auth, envelope = received[0]
    assert auth.login == b"mailer"
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message.get_body(("plain",)) is not None and message.get_body(("html",)) is not None
