"""POST /api/v1/tokens and the bearer-token gate of the API."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from models import ApiToken
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.routes.api_support import empty_queue, user_with_token  # noqa: F401
from utils.db_operations import UserOps


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["message"], str) and error["message"]
    if code:
        assert error["code"] == code
    return error


def test_token_is_issued_for_right_credentials_and_stored_hashed(app, client, committed):
    user = UserFactory(email="owner@example.test")
    committed.commit()
    response = client.post("/api/v1/tokens",
                           json={"email": "Owner@Example.test", "password": DEFAULT_PASSWORD})
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"token", "expires_at"}
    expires = datetime.fromisoformat(body["expires_at"])
    expected = datetime.now(UTC) + timedelta(hours=app.config["API_TOKEN_TTL_HOURS"])
    assert abs((expires - expected).total_seconds()) < 120
    row = committed.scalar(sa.select(ApiToken).where(ApiToken.user_id == user.id))
    assert row.token_hash == hashlib.sha256(body["token"].encode()).hexdigest()
    assert body["token"] not in row.token_hash
    listed = client.get("/api/v1/batches",
                        headers={"Authorization": f"Bearer {body['token']}"})
    assert listed.status_code == 200


@pytest.mark.parametrize("payload", [
    {"email": "owner@example.test", "password": "wrong password"},
    {"email": "nobody@example.test", "password": DEFAULT_PASSWORD},
])
def test_wrong_credentials_are_401(client, committed, payload):
    UserFactory(email="owner@example.test")
    committed.commit()
    assert_error(client.post("/api/v1/tokens", json=payload), 401, "invalid_credentials")


@pytest.mark.parametrize("payload", [
    {}, {"email": "a@example.test"}, {"password": "x"}, {"email": 5, "password": "x"},
    {"email": "", "password": ""}, [], "text", 5,
])
def test_missing_or_mistyped_fields_are_400(client, payload):
    error = assert_error(client.post("/api/v1/tokens", json=payload), 400, "validation_error")
    assert error["details"]


def test_malformed_json_is_400_and_other_media_types_415(client):
    assert_error(client.post("/api/v1/tokens", data='{"email": ',
                             content_type="application/json"), 400, "invalid_json")
    assert_error(client.post("/api/v1/tokens", data={"email": "a", "password": "b"}),
                 415, "unsupported_media_type")


def test_five_wrong_passwords_lock_the_account(client, committed):
    UserFactory(email="target@example.test")
    committed.commit()
    for _ in range(5):
        assert_error(client.post("/api/v1/tokens", json={
            "email": "target@example.test", "password": "guess"}), 401, "invalid_credentials")
    locked = client.post("/api/v1/tokens", json={"email": "target@example.test",
                                                 "password": DEFAULT_PASSWORD})
    # Locked answers exactly like unknown (tests/routes/test_auth_lockout.py).
    assert_error(locked, 401, "invalid_credentials")


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer not-a-token", "Basic dXNlcjpwdw==",
                                    "Token abc"])
def test_missing_or_unknown_tokens_are_401(client, header):
    headers = {"Authorization": header} if header else {}
    response = client.get("/api/v1/batches", headers=headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_expired_and_revoked_tokens_are_refused(client, committed):
    user = UserFactory()
    expired, _ = UserOps.issue_token(committed, user, timedelta(seconds=-1))
    revoked, row = UserOps.issue_token(committed, user, timedelta(hours=1))
    UserOps.revoke_token(committed, user, row.id)
    committed.commit()
    for token in (expired, revoked):
        assert_error(client.get("/api/v1/batches", headers={"Authorization": f"Bearer {token}"}),
                     401, "unauthorized")


def test_a_browser_session_cookie_is_not_accepted_by_the_api(client, committed):
    """The API is CSRF-exempt, so it must ignore cookies: only bearer tokens count."""
    UserFactory(email="cookie@example.test")
    committed.commit()
    signed_in = client.post("/login", data={"email": "cookie@example.test",
                                            "password": DEFAULT_PASSWORD})
    assert signed_in.status_code == 302
    assert client.get("/").status_code == 200
    assert_error(client.get("/api/v1/batches"), 401, "unauthorized")
    assert_error(client.post("/api/v1/batches", json={"urls": ["a.example"]}), 401)


def test_the_token_decides_the_user_even_with_another_users_cookie(client, committed):
    UserFactory(email="cookie2@example.test")
    other, headers = user_with_token(committed)
    committed.commit()
    client.post("/login", data={"email": "cookie2@example.test", "password": DEFAULT_PASSWORD})
    created = client.post("/api/v1/batches", json={"urls": ["a.example"]}, headers=headers)
    assert created.status_code == 201
    listed = client.get("/api/v1/batches", headers=headers).get_json()
    assert [b["id"] for b in listed["items"]] == [created.get_json()["id"]]
    from models import Batch

    assert committed.get(Batch, created.get_json()["id"]).user_id == other.id
