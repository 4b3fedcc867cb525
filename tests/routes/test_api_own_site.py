""""Your site": own_url in POST /api/v1/batches, own_site_id in the batch and comparison
bodies, the comparison framed around it; renaming a site."""

from __future__ import annotations

from analysis.comparison import compare
from models import Comparison, Site
from tests.routes.api_support import (  # noqa: F401 - empty_queue is an autouse fixture
    empty_queue,
    finished_batch,
    sample_report,
    user_with_token,
)
from tests.routes.test_api_tokens import assert_error


def test_own_url_matches_after_normalisation(client, committed):
    _user, headers = user_with_token(committed)
    response = client.post("/api/v1/batches", headers=headers, json={
        "urls": ["https://a.example/", "B.example"], "own_url": "b.EXAMPLE"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    own = next(u for u in body["urls"] if u["url"] == "https://b.example/")
    assert body["own_site_id"] == own["id"]
    again = client.get(f"/api/v1/batches/{body['id']}", headers=headers).get_json()
    assert again["own_site_id"] == own["id"]
    listed = client.get("/api/v1/batches", headers=headers).get_json()["items"][0]
    assert listed["own_site_id"] == own["id"]


def test_without_own_url_there_is_no_own_site(client, committed):
    _user, headers = user_with_token(committed)
    body = client.post("/api/v1/batches", headers=headers,
                       json={"urls": ["a.example"]}).get_json()
    assert body["own_site_id"] is None


def test_own_url_not_among_urls_is_a_400_with_details(client, committed):
    _user, headers = user_with_token(committed)
    for value, words in [("c.example", "must be one of urls"), ("http://", "not a valid URL"),
                         (42, "must be a string")]:
        response = client.post("/api/v1/batches", headers=headers, json={
            "urls": ["a.example", "b.example"], "own_url": value})
        error = assert_error(response, 400, "validation_error")
        assert words in error["details"]["own_url"]
    assert committed.query(Site).count() == 0


def test_comparison_is_framed_around_the_own_site(client, committed):
    user, headers = user_with_token(committed)
    strong = sample_report("Strong", meta_description="x" * 80, word_count=900)
    weak = sample_report("Weak", https=False, word_count=100)
    batch = finished_batch(committed, user, [strong, weak])
    sites = committed.query(Site).filter_by(batch_id=batch.id).order_by(Site.position).all()
    sites[1].is_own = True
    committed.commit()
    body = client.get(f"/api/v1/batches/{batch.id}/comparison", headers=headers).get_json()
    own = str(sites[1].id)
    assert body["own_site_id"] == sites[1].id
    assert body["standing"]["https"] == "trail"
    assert body["standing"]["word_count"] == "trail"
    assert body["standing"]["pages_crawled"] is None
    gaps = body["gap_details"][own]
    assert gaps[0]["text"] == "Not served over HTTPS" and gaps[0]["points"] == 40
    assert [g["points"] for g in gaps] == sorted((g["points"] for g in gaps), reverse=True)
    assert body["strengths"][str(sites[0].id)]
    assert body["names"] == {str(sites[0].id): "Strong", own: "Weak"}
    data = committed.query(Comparison).filter_by(batch_id=batch.id).one().data
    assert data == compare({str(s.id): s.report for s in sites})


def test_rename_a_site_and_restore_the_derived_name(client, committed):
    user, headers = user_with_token(committed)
    batch = finished_batch(committed, user, [sample_report("Acme | Shoes")])
    site = committed.query(Site).filter_by(batch_id=batch.id).one()
    assert client.get(f"/api/v1/sites/{site.id}", headers=headers).get_json()["name"] == "Acme"
    renamed = client.patch(f"/api/v1/sites/{site.id}", headers=headers,
                           json={"name": "  Acme   Corp "})
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "Acme Corp"
    back = client.patch(f"/api/v1/sites/{site.id}", headers=headers, json={"name": None})
    assert back.get_json()["name"] == "Acme"
    assert_error(client.patch(f"/api/v1/sites/{site.id}", headers=headers, json={}), 400)
    assert_error(client.patch(f"/api/v1/sites/{site.id}", headers=headers,
                              json={"name": "x" * 201}), 400)
    _other, other_headers = user_with_token(committed)
    assert_error(client.patch(f"/api/v1/sites/{site.id}", headers=other_headers,
                              json={"name": "mine"}), 404)
