"""The watchlist API (issue 11's exact shapes), the Atom feed and its revocable token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree as ET

import pytest

from models import Change, WatchlistRun
from tests.conftest import drain_queue
from tests.factories import BatchFactory, WatchlistFactory
from tests.routes.api_support import empty_queue, user_with_token  # noqa: F401

BODY = {"name": "Shoes", "urls": ["nike.example", "https://adidas.example/", "puma.example"],
        "own_url": "puma.example", "max_pages": 5,
        "schedule": {"every": "week", "hour": 7, "weekday": 2, "timezone": "Europe/Berlin"},
        "notify": {"emails": ["me@example.test"], "webhook_url": "https://hooks.example/x"}}


@pytest.fixture
def owner(committed):
    return user_with_token(committed)


def test_create_get_patch_delete(client, owner):
    user, headers = owner
    created = client.post("/api/v1/watchlists", json=BODY, headers=headers)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["id"] > 0 and body["name"] == "Shoes"
    assert body["urls"] == ["https://nike.example/", "https://adidas.example/",
                            "https://puma.example/"]
    assert body["own_url"] == "https://puma.example/"
    assert body["schedule"] == {"every": "week", "hour": 7, "weekday": 2,
                                "timezone": "Europe/Berlin"}
    assert body["notify"] == {"emails": ["me@example.test"],
                              "webhook_url": "https://hooks.example/x"}
    assert len(body["webhook_secret"]) == 64  # shown once
    next_run = datetime.fromisoformat(body["next_run_at"])
    assert next_run.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin")).hour == 7
    url = f"/api/v1/watchlists/{body['id']}"
    fetched = client.get(url, headers=headers).get_json()
    assert "webhook_secret" not in fetched and fetched["feed_url"] == body["feed_url"]
    listed = client.get("/api/v1/watchlists", headers=headers).get_json()
    assert [w["id"] for w in listed["items"]] == [body["id"]] and listed["next"] is None
    patched = client.patch(url, json={"name": "Trainers", "schedule": {"every": "off"},
                                      "paused": True}, headers=headers)
    assert patched.status_code == 200, patched.get_json()
    patched = patched.get_json()
    assert patched["name"] == "Trainers" and patched["paused"] is True
    assert patched["schedule"]["every"] == "off" and patched["next_run_at"] is None
    assert patched["urls"] == body["urls"] and "webhook_secret" not in patched
    rehooked = client.patch(url, json={"notify": {"webhook_url": "https://hooks.example/y"}},
                            headers=headers).get_json()
    assert len(rehooked["webhook_secret"]) == 64
    assert rehooked["webhook_secret"] != body["webhook_secret"]
    assert client.delete(url, headers=headers).status_code == 204
    assert client.get(url, headers=headers).status_code == 404


@pytest.mark.parametrize(("change", "field"), [
    ({"urls": ["only.example"]}, "urls"),
    ({"urls": ["a.example", "a.example/"]}, "urls"),
    ({"urls": ["a.example", "not a url"]}, "urls"),
    ({"own_url": "other.example"}, "own_url"),
    ({"schedule": {"every": "week", "hour": 7, "timezone": "UTC"}}, "schedule"),
    ({"schedule": {"every": "day", "hour": 24, "timezone": "UTC"}}, "schedule"),
    ({"schedule": {"every": "day", "hour": 3, "timezone": "Mars/Base"}}, "schedule"),
    ({"schedule": {"every": "hourly"}}, "schedule"),
    ({"notify": {"emails": ["nope"]}}, "notify"),
    ({"notify": {"webhook_url": "ftp://x.example/"}}, "notify"),
    ({"notify": {"webhook_url": "http://169.254.169.254/latest"}}, "notify"),
    ({"notify": {"webhook_url": "http://[::ffff:10.0.0.1]/"}}, "notify"),
    ({"max_pages": 0}, "max_pages"),
    ({"name": ""}, "name"),
])
def test_invalid_watchlists_are_400_naming_the_field(client, owner, change, field):
    _, headers = owner
    response = client.post("/api/v1/watchlists", json={**BODY, **change}, headers=headers)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "validation_error" and field in error["details"]


def test_other_users_watchlist_is_404_and_token_needed(client, committed, owner):
    _, headers = owner
    other = WatchlistFactory()
    committed.commit()
    for method in ("get", "patch", "delete"):
        response = getattr(client, method)(f"/api/v1/watchlists/{other.id}", json={},
                                           headers=headers)
        assert response.status_code == 404
    assert client.post(f"/api/v1/watchlists/{other.id}/runs", headers=headers).status_code == 404
    assert client.get("/api/v1/watchlists").status_code == 401


def test_run_now_creates_a_linked_batch_and_enqueues_it(app, client, committed, owner):
    user, headers = owner
    watchlist = WatchlistFactory(owner=user)
    committed.commit()
    response = client.post(f"/api/v1/watchlists/{watchlist.id}/runs", headers=headers)
    assert response.status_code == 201
    batch_id = response.get_json()["batch_id"]
    assert list(response.get_json()) == ["batch_id"]
    assert ("pipeline.start_batch", [batch_id]) in drain_queue(app)
    batch = client.get(f"/api/v1/batches/{batch_id}", headers=headers).get_json()
    assert [u["url"] for u in batch["urls"]] == watchlist.urls
    second = client.post(f"/api/v1/watchlists/{watchlist.id}/runs", headers=headers)
    runs = client.get(f"/api/v1/watchlists/{watchlist.id}/runs", headers=headers).get_json()
    assert [r["batch_id"] for r in runs["items"]] == [second.get_json()["batch_id"], batch_id]
    assert set(runs["items"][0]) == {"batch_id", "status", "scheduled_for", "started_at",
                                     "finished_at"}
    assert runs["items"][0]["status"] == "pending" and runs["next"] is None


def _changes(session, watchlist, count, start):
    batch = BatchFactory(owner=watchlist_owner(session, watchlist), status="completed")
    session.add(WatchlistRun(watchlist_id=watchlist.id, scheduled_for=start, batch_id=batch.id,
                             trigger="manual"))
    for i in range(count):
        session.add(Change(watchlist_id=watchlist.id, batch_id=batch.id,
                           site_url="https://a.example/", kind="title", before=f"t{i}",
                           after=f"t{i + 1}", detected_at=start + timedelta(hours=i)))
    session.commit()


def watchlist_owner(session, watchlist):
    from models import User

    return session.get(User, watchlist.user_id)


def test_changes_newest_first_with_since_and_cursor(client, committed, owner):
    user, headers = owner
    watchlist = WatchlistFactory(owner=user)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    _changes(committed, watchlist, 5, start)
    url = f"/api/v1/watchlists/{watchlist.id}/changes"
    page = client.get(f"{url}?limit=2", headers=headers).get_json()
    assert [c["before"] for c in page["items"]] == ["t4", "t3"]
    assert set(page["items"][0]) == {"id", "batch_id", "site_url", "kind", "before", "after",
                                     "detected_at"}
    rest = client.get(f"{url}?limit=10&cursor={page['next']}", headers=headers).get_json()
    assert [c["before"] for c in rest["items"]] == ["t2", "t1", "t0"] and rest["next"] is None
    since = client.get(url, query_string={"since": "2026-06-01T03:00:00Z"},
                       headers=headers).get_json()
    assert [c["before"] for c in since["items"]] == ["t4", "t3"]
    offset = client.get(url, query_string={"since": "2026-06-01T05:00:00+02:00"},
                        headers=headers).get_json()
    assert [c["before"] for c in offset["items"]] == ["t4", "t3"]
    for bad in ("yesterday", "2026-06-01T03:00:00"):
        response = client.get(url, query_string={"since": bad}, headers=headers)
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "invalid_since"


def test_atom_feed_with_revocable_token(client, committed, owner):
    user, headers = owner
    watchlist = WatchlistFactory(owner=user)
    _changes(committed, watchlist, 2, datetime(2026, 6, 1, tzinfo=UTC))
    feed_url = client.get(f"/api/v1/watchlists/{watchlist.id}",
                          headers=headers).get_json()["feed_url"]
    path = feed_url.split("localhost", 1)[1]
    response = client.get(path)
    assert response.status_code == 200 and response.mimetype == "application/atom+xml"
    root = ET.fromstring(response.data)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    titles = [e.findtext("a:title", namespaces=ns) for e in root.findall("a:entry", ns)]
    assert len(titles) == 2 and all("https://a.example/" in t for t in titles)
    rotated = client.patch(f"/api/v1/watchlists/{watchlist.id}",
                           json={"rotate_feed_token": True}, headers=headers).get_json()
    assert rotated["feed_url"] != feed_url
    assert client.get(path).status_code == 404
    assert client.get(rotated["feed_url"].split("localhost", 1)[1]).status_code == 200
    assert client.get("/watchlists/feed/short.atom").status_code == 404
