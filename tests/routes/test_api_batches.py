"""Batches, sites, comparison, events, cancel and delete through the JSON API."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa

from models import Batch, BatchEvent, Page, Site
from tests.factories import BatchFactory, SiteFactory, UserFactory
from tests.routes.api_support import (  # noqa: F401 - empty_queue is an autouse fixture
    drain_queue,
    empty_queue,
    finished_batch,
    sample_report,
    user_with_token,
)
from tests.routes.test_api_tokens import assert_error


@pytest.fixture
def owner(committed):
    return user_with_token(committed)


@pytest.fixture
def headers(owner):
    return owner[1]


@pytest.fixture
def stranger(committed):
    """Another user and their token."""
    return user_with_token(committed)


def post_batch(client, headers, **payload):
    return client.post("/api/v1/batches", json=payload, headers=headers)


def test_create_answers_201_with_the_contract_shape_and_enqueues_after_commit(
        app, client, headers, committed):
    response = post_batch(client, headers, name="Shoes",
                          urls=["Nike.com", "https://adidas.com/", "nike.com", "puma.com"],
                          max_pages=3)
    assert response.status_code == 201
    body = response.get_json()
    assert {"id", "name", "status", "progress", "total_urls", "urls", "created_at"} <= set(body)
    assert body["name"] == "Shoes" and body["status"] == "pending" and body["progress"] == 0
    assert body["total_urls"] == 3 and body["max_pages"] == 3
    assert [u["url"] for u in body["urls"]] == [
        "https://nike.com/", "https://adidas.com/", "https://puma.com/"]
    assert all(set(u) >= {"id", "url", "status"} and u["status"] == "pending"
               for u in body["urls"])
    datetime.fromisoformat(body["created_at"])
    stored = committed.get(Batch, body["id"])
    assert stored is not None and stored.total_urls == 3
    assert drain_queue(app) == [("pipeline.start_batch", [body["id"]])]


def test_max_pages_defaults_to_10_and_a_name_is_made_up(client, headers):
    body = post_batch(client, headers, urls=["a.example", "b.example"]).get_json()
    assert body["max_pages"] == 10
    assert body["name"] == "a.example, b.example"


def test_invalid_urls_are_400_with_details_by_index(app, client, headers, committed):
    response = post_batch(client, headers,
                          urls=["ok.example", "", "ftp://files.example", "http://[::1", 42,
                                "good.example"])
    error = assert_error(response, 400, "validation_error")
    assert set(error["details"]["urls"]) == {"1", "2", "3", "4"}
    assert "empty" in error["details"]["urls"]["1"]
    assert "ftp" in error["details"]["urls"]["2"]
    assert committed.scalar(sa.select(sa.func.count()).select_from(Batch)) == 0
    assert drain_queue(app) == []


def test_more_than_max_distinct_urls_is_400_but_duplicates_merge_first(app, client, headers):
    limit = app.config["MAX_URLS_PER_BATCH"]
    distinct = [f"site{i}.example" for i in range(limit)]
    ok = post_batch(client, headers, urls=distinct + distinct[:5])
    assert ok.status_code == 201 and ok.get_json()["total_urls"] == limit
    error = assert_error(post_batch(client, headers, urls=[*distinct, "one-more.example"]), 400,
                         "validation_error")
    assert str(limit) in error["details"]["urls"]


@pytest.mark.parametrize("max_pages", [0, 201, -1, "5", 2.5, True, None])
def test_max_pages_out_of_range_or_mistyped_is_400(client, headers, max_pages):
    error = assert_error(post_batch(client, headers, urls=["a.example"], max_pages=max_pages),
                         400, "validation_error")
    assert "max_pages" in error["details"]


@pytest.mark.parametrize("payload", [{}, {"urls": []}, {"urls": "a.example"},
                                     {"urls": ["a.example"], "name": 7},
                                     {"urls": ["a.example"], "name": "x" * 201}])
def test_missing_or_mistyped_fields_are_400(client, headers, payload):
    assert_error(client.post("/api/v1/batches", json=payload, headers=headers), 400,
                 "validation_error")


def test_body_that_is_not_an_object_is_400(client, headers):
    assert_error(client.post("/api/v1/batches", json=["a.example"], headers=headers), 400)
    assert_error(client.post("/api/v1/batches", data="{", content_type="application/json",
                             headers=headers), 400, "invalid_json")


def test_list_is_own_batches_newest_first_with_a_cursor(client, committed, owner, stranger):
    user, headers = owner
    mine = [BatchFactory(owner=user, name=f"mine {i}") for i in range(5)]
    BatchFactory(owner=stranger[0], name="theirs")
    committed.commit()
    first = client.get("/api/v1/batches?limit=2", headers=headers).get_json()
    assert [b["id"] for b in first["items"]] == [mine[4].id, mine[3].id]
    assert first["next"] is not None
    second = client.get(f"/api/v1/batches?limit=2&cursor={first['next']}",
                        headers=headers).get_json()
    assert [b["id"] for b in second["items"]] == [mine[2].id, mine[1].id]
    third = client.get(f"/api/v1/batches?limit=2&cursor={second['next']}",
                       headers=headers).get_json()
    assert [b["id"] for b in third["items"]] == [mine[0].id]
    assert third["next"] is None
    default = client.get("/api/v1/batches", headers=headers).get_json()
    assert len(default["items"]) == 5 and default["next"] is None


@pytest.mark.parametrize("query", ["cursor=abc", "cursor=-1", "cursor=0", "limit=0",
                                   "limit=101", "limit=x"])
def test_bad_cursor_or_limit_is_400(client, headers, query):
    assert_error(client.get(f"/api/v1/batches?{query}", headers=headers), 400)


def test_get_batch_reports_status_progress_and_site_errors(client, committed, owner):
    user, headers = owner
    batch = BatchFactory(owner=user, status="running", total_urls=4)
    SiteFactory(batch=batch, status="completed")
    SiteFactory(batch=batch, status="failed", error="HTTP 500")
    SiteFactory(batch=batch, status="running")
    SiteFactory(batch=batch, status="pending")
    committed.commit()
    body = client.get(f"/api/v1/batches/{batch.id}", headers=headers).get_json()
    assert body["status"] == "running" and body["progress"] == 50
    assert [u["status"] for u in body["urls"]] == ["completed", "failed", "running", "pending"]
    assert body["urls"][1]["error"] == "HTTP 500"
    assert all("error" in u for u in body["urls"])


def test_another_users_resources_are_404_like_missing_ones(client, committed, owner, stranger):
    user, headers = owner
    theirs = finished_batch(committed, stranger[0], [sample_report("Theirs")])
    site_id = committed.scalar(sa.select(Site.id).where(Site.batch_id == theirs.id))
    for method, path in [
        ("get", f"/api/v1/batches/{theirs.id}"),
        ("get", f"/api/v1/batches/{theirs.id}/comparison"),
        ("get", f"/api/v1/batches/{theirs.id}/events"),
        ("get", f"/api/v1/batches/{theirs.id}/export.csv"),
        ("get", f"/api/v1/batches/{theirs.id}/export.json"),
        ("post", f"/api/v1/batches/{theirs.id}/cancel"),
        ("delete", f"/api/v1/batches/{theirs.id}"),
        ("get", f"/api/v1/sites/{site_id}"),
        ("get", "/api/v1/batches/999999"),
        ("get", "/api/v1/sites/999999"),
        ("get", f"/api/v1/batches/{2**40}"),
        ("get", f"/api/v1/sites/{2**63}"),
    ]:
        assert_error(getattr(client, method)(path, headers=headers), 404, "not_found")
    committed.expire_all()
    assert committed.get(Batch, theirs.id).status == "completed"


def test_comparison_is_409_until_finished_then_the_contract_shape(client, committed, owner):
    user, headers = owner
    running = BatchFactory(owner=user, status="running", total_urls=1)
    SiteFactory(batch=running, status="running")
    done = finished_batch(committed, user, [sample_report("A", word_count=900),
                                            sample_report("B", images_missing_alt=0), None])
    committed.commit()
    error = assert_error(client.get(f"/api/v1/batches/{running.id}/comparison",
                                    headers=headers), 409, "not_finished")
    assert error["details"]["status"] == "running"
    body = client.get(f"/api/v1/batches/{done.id}/comparison", headers=headers).get_json()
    assert {"metrics", "scores", "gaps", "own_site_id"} <= set(body)
    site_ids = [str(s.id) for s in committed.scalars(
        sa.select(Site).where(Site.batch_id == done.id).order_by(Site.position))]
    words = next(m for m in body["metrics"] if m["key"] == "word_count")
    assert set(words) == {"key", "label", "better", "values", "winners"}
    assert words["better"] == "higher" and words["winners"] == [site_ids[0]]
    assert words["values"][site_ids[2]] is None
    assert body["scores"][site_ids[2]] is None
    assert set(body["scores"][site_ids[0]]) == {"seo", "performance", "security", "content",
                                                "overall"}
    assert isinstance(body["gaps"][site_ids[1]], list)


def test_cancelled_batch_has_no_comparison(client, committed, owner):
    user, headers = owner
    batch = BatchFactory(owner=user, status="running", total_urls=1)
    SiteFactory(batch=batch)
    committed.commit()
    assert client.post(f"/api/v1/batches/{batch.id}/cancel", headers=headers).status_code == 200
    error = assert_error(client.get(f"/api/v1/batches/{batch.id}/comparison",
                                    headers=headers), 409)
    assert "cancelled" in error["message"]


def test_events_are_the_timeline_in_order(client, headers):
    created = client.post("/api/v1/batches", json={"urls": ["a.example"]},
                          headers=headers).get_json()
    client.post(f"/api/v1/batches/{created['id']}/cancel", headers=headers)
    body = client.get(f"/api/v1/batches/{created['id']}/events", headers=headers).get_json()
    assert set(body) == {"items"}
    assert [e["kind"] for e in body["items"]] == ["batch_created", "batch_cancelled"]
    assert set(body["items"][0]) >= {"id", "kind", "message", "created_at"}
    newer = client.get(f"/api/v1/batches/{created['id']}/events?after={body['items'][0]['id']}",
                       headers=headers).get_json()
    assert [e["kind"] for e in newer["items"]] == ["batch_cancelled"]


def test_cancel_stops_unfinished_sites_and_is_409_once_finished(client, committed, owner):
    user, headers = owner
    batch = BatchFactory(owner=user, status="running", total_urls=2)
    SiteFactory(batch=batch, status="completed")
    SiteFactory(batch=batch, status="running")
    committed.commit()
    response = client.post(f"/api/v1/batches/{batch.id}/cancel", headers=headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "cancelled"
    assert [(u["status"], u["error"]) for u in body["urls"]] == [
        ("completed", None), ("cancelled", None)]
    assert body["progress"] == 50  # only the site that really finished counts
    again = client.post(f"/api/v1/batches/{batch.id}/cancel", headers=headers)
    assert assert_error(again, 409, "already_finished")["details"]["status"] == "cancelled"


def test_delete_removes_the_batch_and_everything_under_it(client, committed, owner):
    user, headers = owner
    batch = finished_batch(committed, user, [sample_report(), sample_report()])
    response = client.delete(f"/api/v1/batches/{batch.id}", headers=headers)
    assert response.status_code == 204 and response.get_data() == b""
    assert_error(client.get(f"/api/v1/batches/{batch.id}", headers=headers), 404)
    committed.expire_all()
    for model in (Batch, Site, Page, BatchEvent):
        assert committed.scalar(sa.select(sa.func.count()).select_from(model)) == 0


def test_site_has_the_report_and_pages(client, committed, owner):
    user, headers = owner
    batch = finished_batch(committed, user, [sample_report("Alpha")])
    site = committed.scalar(sa.select(Site).where(Site.batch_id == batch.id))
    body = client.get(f"/api/v1/sites/{site.id}", headers=headers).get_json()
    assert {"id", "url", "status", "error", "report", "pages"} <= set(body)
    assert body["status"] == "completed" and body["report"]["title"] == "Alpha"
    assert set(body["report"]) == set(sample_report())
    assert body["pages"][0]["url"] == site.url and body["pages"][0]["is_homepage"] is True
    assert "missing_description" in body["pages"][0]["issues"]


def test_pending_site_has_null_report(client, committed, owner):
    user, headers = owner
    site = SiteFactory(batch=BatchFactory(owner=user))
    committed.commit()
    body = client.get(f"/api/v1/sites/{site.id}", headers=headers).get_json()
    assert body["report"] is None and body["pages"] == [] and body["status"] == "pending"


def test_users_only_see_their_own_batches_in_lists(client, committed, owner, stranger):
    BatchFactory(owner=stranger[0])
    committed.commit()
    assert client.get("/api/v1/batches", headers=owner[1]).get_json()["items"] == []
    assert len(client.get("/api/v1/batches", headers=stranger[1]).get_json()["items"]) == 1


def test_admin_flag_gives_no_access_to_other_users_batches(client, committed):
    admin, headers = user_with_token(committed, is_admin=True)
    other = UserFactory()
    batch = BatchFactory(owner=other)
    committed.commit()
    assert_error(client.get(f"/api/v1/batches/{batch.id}", headers=headers), 404)
    assert admin.is_admin


def test_a_broker_outage_still_stores_the_batch(app, test_settings, committed, caplog):
    """The database is the source of truth: with the broker down the batch is stored and
    answered 201; the beat requeue (requeue_stalled_sites) starts it later."""
    from app import create_app
    from config import TestConfig
    from models import db
    from tests.conftest import free_port

    down = create_app(TestConfig, role="web", **{
        **test_settings, "CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"})
    try:
        _user, headers = user_with_token(committed)
        response = down.test_client().post("/api/v1/batches", json={"urls": ["a.example"]},
                                           headers=headers)
        assert response.status_code == 201
        assert committed.get(Batch, response.get_json()["id"]).status == "pending"
        assert "could not enqueue batch" in caplog.text
    finally:
        with down.app_context():
            db.engine.dispose()
        app.extensions["celery"].set_default()
