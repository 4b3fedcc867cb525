"""Watchlist pages through the test client: create, edit, pause, run now, delete, the
timeline (filters, before/after side by side, escaping), feed revocation, the dashboard
summary, and the monitoring tasks' doorbells (dispatcher sweep, pipeline hook)."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from models import Batch, Change, Watchlist, WatchlistRun
from tasks.monitoring_tasks import dispatch_watchlists, on_batch_finished
from tests.conftest import drain_queue
from tests.factories import DEFAULT_PASSWORD, BatchFactory, UserFactory, WatchlistFactory
from tests.routes.api_support import empty_queue  # noqa: F401

XSS = "<script>alert(1)</script>"
FORM = {"name": "Rivals", "urls": "a.example\nb.example", "own_url": "", "max_pages": "4",
        "every": "week", "hour": "8", "weekday": "4", "timezone": "America/New_York",
        "emails": "me@example.test", "webhook_url": "https://hooks.example/in"}


@pytest.fixture
def user(committed):
    user = UserFactory(email="web@example.test")
    committed.commit()
    return user


@pytest.fixture
def signed_in(client, user):
    assert client.post("/login", data={"email": user.email,
                                       "password": DEFAULT_PASSWORD}).status_code == 302
    return client


def test_create_edit_pause_run_delete(app, signed_in, committed, user):
    assert signed_in.get("/watchlists/new").status_code == 200
    created = signed_in.post("/watchlists/new", data=FORM)
    assert created.status_code == 302
    watchlist = committed.scalar(sa.select(Watchlist))
    assert (watchlist.name, watchlist.schedule_every, watchlist.schedule_weekday,
            watchlist.timezone) == ("Rivals", "week", 4, "America/New_York")
    page = signed_in.get(created.headers["Location"]).get_data(as_text=True)
    assert "Webhook secret (shown once" in page and watchlist.webhook_secret in page
    assert watchlist.webhook_secret not in signed_in.get(
        created.headers["Location"]).get_data(as_text=True)
    assert "weekly on Friday at 08:00 America/New_York" in " ".join(page.split())

    bad = signed_in.post(f"/watchlists/{watchlist.id}/edit",
                         data={**FORM, "urls": "only.example", "timezone": "Nowhere/X"})
    assert bad.status_code == 400
    assert 'data-field="urls"' in bad.get_data(as_text=True)
    assert 'data-field="schedule.timezone"' in bad.get_data(as_text=True)
    edited = signed_in.post(f"/watchlists/{watchlist.id}/edit",
                            data={**FORM, "name": "Renamed", "every": "off"})
    assert edited.status_code == 302
    committed.expire_all()
    assert committed.get(Watchlist, watchlist.id).name == "Renamed"
    assert committed.get(Watchlist, watchlist.id).next_due_at is None

    signed_in.post(f"/watchlists/{watchlist.id}/pause")
    committed.expire_all()
    assert committed.get(Watchlist, watchlist.id).paused is True
    run = signed_in.post(f"/watchlists/{watchlist.id}/run")
    batch_id = int(run.headers["Location"].rsplit("/", 1)[1])
    assert ("pipeline.start_batch", [batch_id]) in drain_queue(app)
    assert signed_in.post(f"/watchlists/{watchlist.id}/delete").status_code == 302
    assert signed_in.get(f"/watchlists/{watchlist.id}").status_code == 404
    assert committed.get(Batch, batch_id) is not None  # the run stays as a batch


def test_timeline_filters_escapes_and_shows_before_after(signed_in, committed, user):
    watchlist = WatchlistFactory(owner=user, urls=["https://a.example/", "https://b.example/"])
    batch = BatchFactory(owner=user, status="completed")
    committed.add(WatchlistRun(watchlist_id=watchlist.id, batch_id=batch.id,
                               scheduled_for=datetime(2026, 6, 1, tzinfo=UTC)))
    rows = [("https://a.example/", "title", "Old title", XSS),
            ("https://b.example/", "technology_added", None, "WordPress"),
            ("https://a.example/", "meta_description", "Old", "New")]
    for i, (url, kind, before, after) in enumerate(rows):
        committed.add(Change(watchlist_id=watchlist.id, batch_id=batch.id, site_url=url,
                             kind=kind, before=before, after=after,
                             detected_at=datetime(2026, 6, 1, tzinfo=UTC) + timedelta(hours=i)))
    committed.commit()
    dashboard = signed_in.get("/").get_data(as_text=True)
    assert "What changed since your last visit" in dashboard and "3 changes" in dashboard
    page = signed_in.get(f"/watchlists/{watchlist.id}").get_data(as_text=True)
    assert XSS not in page and html.escape(XSS) in page
    kinds = [part.split('"', 1)[0] for part in page.split('data-kind="')[1:]]
    assert kinds == ["meta_description", "technology_added", "title"]  # newest first
    assert page.count('class="before"') == 3 and page.count('class="after"') == 3
    by_site = signed_in.get(f"/watchlists/{watchlist.id}?site=https://b.example/")
    assert by_site.get_data(as_text=True).count('data-kind="') == 1
    by_kind = signed_in.get(f"/watchlists/{watchlist.id}?kind=title").get_data(as_text=True)
    assert by_kind.count('data-kind="title"') == 1 and by_kind.count('data-kind="') == 1
    assert "Nothing new" in signed_in.get("/").get_data(as_text=True)


def test_feed_link_is_revocable_and_pages_are_private(client, signed_in, committed, user):
    watchlist = WatchlistFactory(owner=user)
    other = WatchlistFactory()
    committed.commit()
    old = f"/watchlists/feed/{watchlist.feed_token}.atom"
    assert client.get(old).status_code == 200
    signed_in.post(f"/watchlists/{watchlist.id}/feed")
    assert client.get(old).status_code == 404
    committed.expire_all()
    assert client.get(f"/watchlists/feed/{committed.get(Watchlist, watchlist.id).feed_token}"
                      ".atom").status_code == 200
    for path in (f"/watchlists/{other.id}", f"/watchlists/{other.id}/edit"):
        assert signed_in.get(path).status_code == 404
    assert signed_in.post(f"/watchlists/{other.id}/run").status_code == 404


def test_dashboard_without_watchlists_says_nothing_about_them(signed_in):
    assert "since your last visit" not in signed_in.get("/").get_data(as_text=True)


def test_dispatcher_task_starts_runs_and_sweeps_lost_detections(app, committed):
    due = WatchlistFactory(next_due_at=datetime(2020, 1, 1, tzinfo=UTC))
    finished = BatchFactory(status="completed")
    committed.add(WatchlistRun(watchlist_id=due.id, batch_id=finished.id,
                               scheduled_for=datetime(2019, 1, 1, tzinfo=UTC)))
    committed.commit()
    result = dispatch_watchlists.apply().get()
    assert len(result["runs"]) == 1 and result["detect"] == [finished.id]
    queued = drain_queue(app)
    assert ("pipeline.start_batch", result["runs"]) in queued
    assert ("monitoring.detect_changes", [finished.id]) in queued
    on_batch_finished(finished.id, None)
    on_batch_finished(finished.id, "completed")
    assert drain_queue(app) == [("monitoring.detect_changes", [finished.id])]
    committed.expire_all()
    assert committed.get(Watchlist, due.id).next_due_at > datetime.now(UTC)
    assert dispatch_watchlists.apply().get()["runs"] == []
