"""Accounts in the browser: sign up, sign in with lockout, sign out, tokens, admin link,
cookies and CSRF."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app import create_app
from config import TestConfig
from models import ApiToken, User, db
from tests.factories import DEFAULT_PASSWORD, UserFactory


def sign_in(client, email: str, password: str = DEFAULT_PASSWORD):
    return client.post("/login", data={"email": email, "password": password})


def test_sign_up_hashes_with_scrypt_then_signs_in(client, committed):
    response = client.post("/signup", data={"email": "New@Example.test",
                                            "password": "long enough pw",
                                            "confirm": "long enough pw"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    user = committed.scalar(sa.select(User).where(User.email == "new@example.test"))
    assert user.password_hash.startswith("scrypt:")
    assert "long enough pw" not in user.password_hash
    assert sign_in(client, "new@example.test", "long enough pw").status_code == 302
    assert client.get("/").status_code == 200


@pytest.mark.parametrize("data, message", [
    ({"email": "x@example.test", "password": "short pw", "confirm": "short pw"},
     "at least 12 characters"),
    ({"email": "x@example.test", "password": "123qweasdzxc", "confirm": "123qweasdzxc"},
     "most common"),
    ({"email": "x@example.test", "password": "long enough pw", "confirm": "different pw!"},
     "do not match"),
    ({"email": "not-an-email", "password": "long enough pw", "confirm": "long enough pw"},
     "e-mail address"),
])
def test_sign_up_errors_are_shown_next_to_the_fields(client, committed, data, message):
    UserFactory(email="taken@example.test")
    committed.commit()
    response = client.post("/signup", data=data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert 'aria-invalid="true"' in response.get_data(as_text=True)
    assert committed.scalar(sa.select(sa.func.count()).select_from(User)) == 1


def test_sign_in_and_sign_out(client, committed):
    UserFactory(email="me@example.test")
    committed.commit()
    assert client.get("/batches/new").status_code == 302  # "/" is the product page
    response = sign_in(client, "me@example.test")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert "Your batches" in page and "Sign out" in page
    assert client.post("/logout").status_code == 302
    assert client.get("/batches/new").headers["Location"].startswith("/login")


def test_wrong_password_then_lockout_after_five(client, committed):
    UserFactory(email="me@example.test")
    committed.commit()
    for _ in range(5):
        response = sign_in(client, "me@example.test", "wrong password")
        assert response.status_code == 401
        assert "Wrong e-mail or password" in response.get_data(as_text=True)
    locked = sign_in(client, "me@example.test")
    assert locked.status_code == 401  # the same answer as a wrong password or unknown e-mail
    assert "Wrong e-mail or password" in locked.get_data(as_text=True)
    assert client.get("/batches/new").status_code == 302


@pytest.mark.parametrize("target, expected", [
    ("/batches/new", "/batches/new"),
    ("https://evil.example/", "/"),
    ("//evil.example/", "/"),
    ("/\\evil.example", "/"),
])
def test_next_only_follows_local_paths(client, committed, target, expected):
    UserFactory(email="me@example.test")
    committed.commit()
    response = client.post("/login", query_string={"next": target},
                           data={"email": "me@example.test", "password": DEFAULT_PASSWORD})
    assert response.headers["Location"] == expected


def test_login_required_pages_redirect_with_next(client):
    response = client.get("/batches/new")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_account_page_issues_lists_and_revokes_tokens(client, committed):
    UserFactory(email="me@example.test")
    committed.commit()
    sign_in(client, "me@example.test")
    created = client.post("/account/tokens", data={"name": "ci"})
    assert created.status_code == 200
    token = re.search(r'id="new-token">([^<]+)<', created.get_data(as_text=True)).group(1)
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/batches", headers=auth).status_code == 200
    page = client.get("/account").get_data(as_text=True)
    assert "ci" in page and "active" in page and token not in page  # shown once only
    row = committed.scalar(sa.select(ApiToken))
    assert client.post(f"/account/tokens/{row.id}/revoke").status_code == 302
    assert client.get("/api/v1/batches", headers=auth).status_code == 401
    assert "revoked" in client.get("/account").get_data(as_text=True)


def test_cannot_revoke_another_users_token(client, committed):
    from datetime import timedelta

    from utils.db_operations import UserOps

    other = UserFactory()
    _token, row = UserOps.issue_token(committed, other, timedelta(hours=1))
    UserFactory(email="me@example.test")
    committed.commit()
    sign_in(client, "me@example.test")
    assert client.post(f"/account/tokens/{row.id}/revoke").status_code == 404
    committed.expire_all()
    assert committed.get(ApiToken, row.id).revoked_at is None


def test_admins_see_the_admin_link_others_do_not(client, committed):
    UserFactory(email="admin@example.test", is_admin=True)
    UserFactory(email="user@example.test")
    committed.commit()
    sign_in(client, "user@example.test")
    assert 'href="/admin"' not in client.get("/").get_data(as_text=True)
    client.post("/logout")
    sign_in(client, "admin@example.test")
    assert 'href="/admin"' in client.get("/").get_data(as_text=True)


def test_session_cookie_is_httponly_and_samesite_lax(client, committed):
    UserFactory(email="me@example.test")
    committed.commit()
    cookie = sign_in(client, "me@example.test").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_pages_carry_security_headers(client):
    response = client.get("/login")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.fixture
def csrf_app(app, test_settings):
    """An app instance with CSRF protection on (the test settings turn it off)."""
    application = create_app(TestConfig, role="web", **{**test_settings,
                                                         "WTF_CSRF_ENABLED": True})
    yield application
    with application.app_context():
        db.engine.dispose()
    app.extensions["celery"].set_default()  # tasks use the session app's Celery again


def test_forms_without_their_csrf_token_are_refused(csrf_app, committed):
    UserFactory(email="me@example.test")
    committed.commit()
    client = csrf_app.test_client()
    refused = client.post("/login", data={"email": "me@example.test",
                                          "password": DEFAULT_PASSWORD})
    assert refused.status_code == 400
    assert "CSRF" in refused.get_data(as_text=True)
    form = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
    accepted = client.post("/login", data={"email": "me@example.test",
                                           "password": DEFAULT_PASSWORD, "csrf_token": token})
    assert accepted.status_code == 302
    # Signed in, a form posted without the token is still refused (sign out, new batch).
    assert client.post("/logout").status_code == 400
    assert client.post("/batches/new", data={"urls": "a.example", "max_pages": "3"}
                       ).status_code == 400
    assert client.get("/").status_code == 200
    # The bearer-token API is exempt: it never relies on cookies.
    assert client.post("/api/v1/tokens", json={"email": "me@example.test",
                                               "password": DEFAULT_PASSWORD}).status_code == 201


def test_a_bearer_token_on_a_page_signs_in_the_full_user(client, committed):
    """Outside /api a bearer token still works as before: the page gets the User itself
    (the API gets only its TokenIdentity)."""
    from tests.routes.api_support import user_with_token

    user, headers = user_with_token(committed, email="bearer-page@example.test")
    page = client.get("/account", headers=headers)
    assert page.status_code == 200
    assert "bearer-page@example.test" in page.get_data(as_text=True)
    assert client.get("/account").status_code == 302  # without it: the sign-in page
