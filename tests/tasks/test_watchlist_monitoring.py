"""End to end: a local site changes between two runs of a watchlist (title edited, page
added, WordPress marker appears). The second run reports exactly those changes; the API,
the timeline, the trend chart, the feed, the digest e-mail (real aiosmtpd on 127.0.0.1) and
the signed webhook (real HTTP receiver) carry them; a run with no change sends nothing.
Also: retries end failed after 5 attempts and show on the page; the SSRF guard stops a
webhook on any hop."""

from __future__ import annotations

import email
import email.policy
import html
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from models import Batch, Notification, Site
from tasks.analysis_tasks import analyze_site
from tasks.monitoring_tasks import detect_changes, send_notification
from tests.conftest import free_port
from tests.factories import DEFAULT_PASSWORD
from tests.routes.api_support import empty_queue, user_with_token  # noqa: F401
from utils.db_operations import BatchOps
from utils.notify import SIGNATURE_HEADER, verify

FILLER = " ".join(f"word{i}" for i in range(300))


@dataclass
class SiteState:
    """What the local site serves; the test edits it between runs."""

    title: str = "Alpha shoes"
    pages: list[str] = field(default_factory=lambda: ["/about", "/pricing"])
    head: str = ""


def _site_handler(state: SiteState):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            if path == "/":
                links = "".join(f'<a href="{p}">page</a> ' for p in state.pages)
                body = (f"<!doctype html><html lang='en'><head><title>{html.escape(state.title)}"
                        f"</title><meta name='description' content='Shoes for all'>{state.head}"
                        f"</head><body><h1>Shoes</h1><p>{FILLER}</p><p>{links}</p>"
                        f"</body></html>")
            elif path in state.pages:
                body = (f"<!doctype html><html lang='en'><head><title>Page {path}</title></head>"
                        f"<body><h1>{path}</h1><p>{FILLER}</p><a href='/'>home</a></body></html>")
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


class Receiver:
    """A webhook receiver: records each POST; answers ``status`` (or redirects)."""

    def __init__(self, host: str = "127.0.0.1", status: int = 200,
                 location: str | None = None) -> None:
        self.received: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.status, self.location = status, location
        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Served:
    def __init__(self, state: SiteState) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _site_handler(state))
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        self.messages.append(envelope)
        return "250 OK"

    def __init__(self) -> None:
        self.messages: list = []


@pytest.fixture
def smtp(app) -> Iterator[Mailbox]:
    """aiosmtpd on 127.0.0.1 with AUTH; SMTP_URL points at it for the test."""
    mailbox = Mailbox()

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"mailer" \
            and auth_data.password == b"s3cret pw"
        return AuthResult(success=ok, handled=False)

    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port,
                            authenticator=authenticate, auth_require_tls=False)
    controller.start()
    # The tasks run under the Celery app's Flask app: after the browser tests that may be the
    # live server's instance, so both get the settings.
    apps = {id(a): a for a in (app, send_notification.app.flask_app)}.values()
    old = [(a, {k: a.config.get(k) for k in ("SMTP_URL", "PUBLIC_BASE_URL", "MAIL_FROM")})
           for a in apps]
    for target, _ in old:
        target.config.update(SMTP_URL=f"smtp://mailer:s3cret%20pw@127.0.0.1:{port}",
                             PUBLIC_BASE_URL="http://rivalscope.test",
                             MAIL_FROM="bot@rivalscope.test")
    yield mailbox
    for target, values in old:
        target.config.update(values)
    controller.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


def run_once(client, session, headers, watchlist_id: int) -> tuple[int, int]:
    """Run now through the API, analyse every site in-process, then detect changes."""
    batch_id = client.post(f"/api/v1/watchlists/{watchlist_id}/runs",
                           headers=headers).get_json()["batch_id"]
    BatchOps.mark_started(session, batch_id, 600)
    session.commit()
    for site_id in session.scalars(sa.select(Site.id).where(Site.batch_id == batch_id)):
        assert analyze_site.apply(args=[site_id]).get() == "completed"
    session.expire_all()
    assert session.get(Batch, batch_id).status == "completed"
    enqueued = detect_changes.apply(args=[batch_id]).get()
    assert detect_changes.apply(args=[batch_id]).get() == 0  # idempotent
    return batch_id, enqueued


def send_pending(session, batch_id: int) -> list[str]:
    ids = session.scalars(sa.select(Notification.id).where(Notification.batch_id == batch_id)
                          .order_by(Notification.id)).all()
    return [send_notification.apply(args=[i]).get() for i in ids]


def test_second_run_reports_exactly_what_changed(app, client, committed, smtp, receiver):
    alpha_state, beta_state = SiteState(), SiteState(title="Beta boots")
    alpha, beta = Served(alpha_state), Served(beta_state)
    try:
        user, headers = user_with_token(committed, email="owner@example.test")
        created = client.post("/api/v1/watchlists", headers=headers, json={
            "name": "Boots", "urls": [alpha.url, beta.url], "max_pages": 10,
            "schedule": {"every": "day", "hour": 6, "timezone": "Europe/Berlin"},
            "notify": {"emails": ["me@example.test", "boss@example.test"],
                       "webhook_url": receiver.url}}).get_json()
        watchlist_id, secret = created["id"], created["webhook_secret"]

        first, enqueued = run_once(client, committed, headers, watchlist_id)
        assert enqueued == 0 and send_pending(committed, first) == []

        alpha_state.title = "Alpha shoes — now 20% off"
        alpha_state.pages.append("/new-collection")
        alpha_state.head = '<meta name="generator" content="WordPress 6.5">'
        second, enqueued = run_once(client, committed, headers, watchlist_id)
        assert enqueued == 2

        changes = client.get(f"/api/v1/watchlists/{watchlist_id}/changes",
                             headers=headers).get_json()["items"]
        got = sorted((c["site_url"], c["kind"], json.dumps(c["before"]), json.dumps(c["after"]))
                     for c in changes)
        assert got == sorted([
            (alpha.url, "title", '"Alpha shoes"', '"Alpha shoes \\u2014 now 20% off"'),
            (alpha.url, "pages_added", "null",
             json.dumps({"count": 1, "urls": [alpha.url + "new-collection"]})),
            (alpha.url, "technology_added", "null", '"WordPress"'),
        ])
        assert all(c["batch_id"] == second for c in changes)

        assert send_pending(committed, second) == ["sent", "sent"], committed.scalars(
            sa.select(Notification.last_error)).all()
        assert len(smtp.messages) == 1
        envelope = smtp.messages[0]
        assert sorted(envelope.rcpt_tos) == ["boss@example.test", "me@example.test"]
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert message.get_content_type() == "multipart/alternative"
        text = message.get_body(("plain",)).get_content()
        page = message.get_body(("html",)).get_content()
        link = f"http://rivalscope.test/watchlists/{watchlist_id}"
        for part in (text, page):
            assert link in part and "WordPress" in part and "1 page(s) added" in part
            assert "now 20% off" in part
        assert "3 change(s)" in message["Subject"]

        assert len(receiver.received) == 1
        hook_headers, body = receiver.received[0]
        assert verify(secret, body, hook_headers[SIGNATURE_HEADER])
        assert not verify("wrong", body, hook_headers[SIGNATURE_HEADER])
        document = json.loads(body)
        assert sorted(c["kind"] for c in document["changes"]) == [
            "pages_added", "technology_added", "title"]
        assert document["timeline_url"] == link and document["batch_id"] == second

        third, enqueued = run_once(client, committed, headers, watchlist_id)
        assert enqueued == 0 and send_pending(committed, third) == []
        assert len(smtp.messages) == 1 and len(receiver.received) == 1

        assert client.post("/login", data={"email": "owner@example.test",
                                           "password": DEFAULT_PASSWORD}).status_code == 302
        dashboard = client.get("/").get_data(as_text=True)
        assert "What changed since your last visit" in dashboard and "3 changes" in dashboard
        timeline = client.get(f"/watchlists/{watchlist_id}").get_data(as_text=True)
        assert timeline.count('data-kind="') == 3
        assert "Alpha shoes — now 20% off" in html.unescape(timeline)
        assert f'href="/batches/{third}/comparison"' in timeline
        assert timeline.count('class="trend-chart"') == 5
        assert timeline.count("<circle") == 5 * 2 * 3  # 5 scores x 2 sites x 3 runs
        filtered = client.get(f"/watchlists/{watchlist_id}?kind=technology_added")
        assert filtered.get_data(as_text=True).count('data-kind="') == 1
        assert "Nothing new" in client.get("/").get_data(as_text=True)
    finally:
        alpha.close()
        beta.close()


def test_failed_webhook_retries_five_times_then_shows_on_the_page(app, client, committed):
    from tests.factories import WatchlistFactory
    from utils.operations.watchlists import NotificationOps

    hook = Receiver(status=500)
    try:
        user, headers = user_with_token(committed, email="x@example.test")
        watchlist = WatchlistFactory(owner=user, webhook_url=hook.url, webhook_secret="k")
        from tests.factories import BatchFactory

        batch = BatchFactory(owner=user, status="completed")
        committed.flush()
        from models import Change

        committed.add(Change(watchlist_id=watchlist.id, batch_id=batch.id,
                             site_url="https://a.example/", kind="site_down",
                             before="https://a.example/", after=None))
        [notification_id] = NotificationOps.enqueue_for(committed, watchlist.id, batch.id)
        committed.commit()
        outcomes = [send_notification.apply(args=[notification_id]).get() for _ in range(6)]
        assert outcomes == ["retry"] * 4 + ["failed", "nothing to send"]
        assert len(hook.received) == 5
        row = committed.get(Notification, notification_id)
        committed.refresh(row)
        assert (row.status, row.attempts, row.last_error) == ("failed", 5,
                                                              "webhook answered HTTP 500")
        client.post("/login", data={"email": "x@example.test", "password": DEFAULT_PASSWORD})
        page = client.get(f"/watchlists/{watchlist.id}").get_data(as_text=True)
        assert 'data-status="failed"' in page and "webhook answered HTTP 500" in page
    finally:
        hook.close()


def test_webhook_redirect_hops_pass_the_ssrf_guard():
    from utils.notify import NotifyError, send_webhook

    inner = Receiver(host="127.0.0.2")
    outer = Receiver(status=307, location=inner.url)
    payload = {"target": outer.url, "batch_id": 1,
               "watchlist": {"id": 1, "name": "w", "webhook_secret": "k", "emails": []},
               "changes": [{"kind": "site_up", "site_url": "https://a.example/"}]}
    try:
        with pytest.raises(NotifyError, match="refused"):
            send_webhook(payload, {}, allow_networks="127.0.0.1/32")
        assert len(outer.received) == 1 and inner.received == []
        with pytest.raises(NotifyError, match="refused"):
            send_webhook(payload, {}, allow_networks="")
        assert len(outer.received) == 1
        send_webhook(payload, {}, allow_networks="127.0.0.0/8")
        assert len(outer.received) == 2 and len(inner.received) == 1
        assert inner.received[0][1] == outer.received[1][1]  # the same signed body, re-POSTed
    finally:
        inner.close()
        outer.close()


def test_a_lost_or_duplicated_notification_message_sends_once(app, committed, receiver):
    from datetime import timedelta

    from models import Change
    from models.base import utcnow
    from tasks.monitoring_tasks import dispatch_watchlists
    from tests.conftest import drain_queue
    from tests.factories import BatchFactory, WatchlistFactory
    from utils.operations.watchlists import NotificationOps

    watchlist = WatchlistFactory(webhook_url=receiver.url, webhook_secret="k",
                                 schedule_every="off")
    batch = BatchFactory(status="completed")
    committed.flush()
    committed.add(Change(watchlist_id=watchlist.id, batch_id=batch.id,
                         site_url="https://a.example/", kind="site_up", before=None,
                         after="https://a.example/"))
    [notification_id] = NotificationOps.enqueue_for(committed, watchlist.id, batch.id)
    committed.commit()
    assert NotificationOps.payload(committed, notification_id) is not None  # in flight
    committed.commit()
    assert send_notification.apply(args=[notification_id]).get() == "nothing to send"
    assert receiver.received == []
    # The attempt in flight died and its message is lost: the dispatcher re-sends it.
    row = committed.get(Notification, notification_id)
    row.lease_until = utcnow() - timedelta(seconds=1)
    row.next_attempt_at = utcnow() - timedelta(minutes=10)
    committed.commit()
    assert dispatch_watchlists.apply().get()["notify"] == [notification_id]
    assert ("monitoring.send_notification", [notification_id]) in drain_queue(app)
    assert send_notification.apply(args=[notification_id]).get() == "sent"
    assert send_notification.apply(args=[notification_id]).get() == "nothing to send"
    assert len(receiver.received) == 1
    assert dispatch_watchlists.apply().get()["notify"] == []
