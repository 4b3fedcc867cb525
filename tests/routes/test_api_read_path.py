"""The API read path: no transaction on PostgreSQL (no BEGIN, ROLLBACK or COMMIT), the
token's use recorded without a commit, and no session cookie read or written under /api."""

from __future__ import annotations

from contextlib import contextmanager

import sqlalchemy as sa

from models import ApiToken
from tests.factories import DEFAULT_PASSWORD, BatchFactory, SiteFactory, UserFactory
from tests.routes.api_support import user_with_token


@contextmanager
def recorded(engine: sa.Engine):
    """Per statement: (first word, the driver's autocommit flag); plus commits and the
    autocommit flag of each connection the pool takes back."""
    seen: dict[str, list] = {"statements": [], "commits": [], "checkins": []}

    def on_execute(conn, _cursor, statement, _params, _context, _many) -> None:
        seen["statements"].append((statement.split()[0].upper(),
                                   getattr(conn.connection.dbapi_connection, "autocommit",
                                           None)))

    def on_commit(_conn) -> None:
        seen["commits"].append(True)

    def on_checkin(dbapi_connection, _record) -> None:
        seen["checkins"].append(getattr(dbapi_connection, "autocommit", None))

    listeners = [(engine, "before_cursor_execute", on_execute), (engine, "commit", on_commit),
                 (engine.pool, "checkin", on_checkin)]
    for target, name, fn in listeners:
        sa.event.listen(target, name, fn)
    try:
        yield seen
    finally:
        for target, name, fn in listeners:
            sa.event.remove(target, name, fn)


def _batch_of(committed, user):
    batch = BatchFactory(owner=user, total_urls=2)
    SiteFactory(batch=batch, url="https://a.example/")
    SiteFactory(batch=batch, url="https://b.example/")
    committed.commit()
    return batch


def test_an_api_read_runs_without_a_transaction_on_postgresql(client, engine, committed,
                                                              postgres_only):
    user, headers = user_with_token(committed)
    batch = _batch_of(committed, user)
    client.get(f"/api/v1/batches/{batch.id}", headers=headers)  # first use: last_used_at
    with recorded(engine) as seen:
        response = client.get(f"/api/v1/batches/{batch.id}", headers=headers)
    assert response.status_code == 200
    assert [s[0] for s in seen["statements"]] == ["SELECT", "SELECT"]  # token, batch
    assert all(autocommit for _word, autocommit in seen["statements"])
    assert seen["commits"] == []
    # The pool gets the connection back in its usual (transactional) mode.
    assert seen["checkins"] and not any(seen["checkins"])


def test_an_api_write_still_runs_in_one_transaction(client, engine, committed, postgres_only):
    _user, headers = user_with_token(committed)
    with recorded(engine) as seen:
        response = client.post("/api/v1/batches", json={"urls": ["a.example", "b.example"]},
                               headers=headers)
    assert response.status_code == 201
    assert seen["statements"] and not any(autocommit for _w, autocommit in seen["statements"])
    assert seen["commits"]


def test_a_token_use_is_recorded_and_on_postgresql_without_a_commit(client, engine, committed,
                                                                   backend):
    user, headers = user_with_token(committed)
    assert committed.scalar(sa.select(ApiToken.last_used_at)) is None
    with recorded(engine) as seen:
        assert client.get("/api/v1/batches", headers=headers).status_code == 200
    committed.expire_all()
    assert committed.scalar(sa.select(ApiToken.last_used_at)) is not None
    assert "UPDATE" in [s[0] for s in seen["statements"]]
    if backend == "postgresql":
        assert seen["commits"] == []
    with recorded(engine) as seen:  # within the minute: no write at all
        assert client.get("/api/v1/batches", headers=headers).status_code == 200
    assert "UPDATE" not in [s[0] for s in seen["statements"]]


def test_api_requests_neither_read_nor_write_the_session_cookie(client, committed):
    UserFactory(email="cookie-api@example.test")
    _other, headers = user_with_token(committed)
    signed_in = client.post("/login", data={"email": "cookie-api@example.test",
                                            "password": DEFAULT_PASSWORD})
    assert signed_in.status_code == 302
    page = client.get("/")
    assert page.status_code == 200 and "Cookie" in page.headers.get("Vary", "")
    for path in ("/api/v1/batches", "/api/v1/openapi.json"):
        response = client.get(path, headers=headers)
        assert response.status_code == 200
        assert "Set-Cookie" not in response.headers
        assert "Cookie" not in response.headers.get("Vary", "")
    assert client.get("/api/v1/batches").status_code == 401  # the cookie still never counts
    assert client.get("/").status_code == 200  # and the browser session still works
