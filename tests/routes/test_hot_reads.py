"""The hot reads: the batch page's 1-second poll (``status.json``) and the API's batch read
make one query each (besides the user's own lookup) and never load report JSON."""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from models import BatchEvent
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.routes.api_support import finished_batch, sample_report, user_with_token

BARE_REPORT = re.compile(r"(SELECT|,)\s*sites\.report\s*(,|AS\b|FROM\b)", re.IGNORECASE)


@contextmanager
def statements(engine: sa.Engine):
    seen: list[str] = []

    def record(_conn, _cursor, statement, _params, _context, _many) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def batch_queries(seen: list[str]) -> list[str]:
    """The statements besides the user's lookup (session cookie or token)."""
    return [s for s in seen if not re.search(r"\bFROM users\b|\bFROM api_tokens\b", s)
            and not s.strip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT",
                                                   "RELEASE"))]


@pytest.fixture
def owner_batch(committed):
    user = UserFactory(email="hot@example.test")
    committed.commit()
    batch = finished_batch(committed, user, [sample_report("Alpha | Shoes"),
                                             sample_report("Beta"), None])
    committed.add(BatchEvent(batch_id=batch.id, kind="batch_finished", message="done"))
    committed.commit()
    return user, batch


def test_status_poll_is_one_query_without_reports(app, client, engine, committed,
                                                  owner_batch):
    user, batch = owner_batch
    assert client.post("/login", data={"email": user.email,
                                       "password": DEFAULT_PASSWORD}).status_code == 302
    last = committed.scalar(sa.select(sa.func.max(BatchEvent.id))) or 0
    with statements(engine) as seen:
        response = client.get(f"/batches/{batch.id}/status.json?after={last}")
    assert response.status_code == 200
    document = response.get_json()
    assert [s["name"] for s in document["sites"]] == ["Alpha", "Beta", "site2.example"]
    assert [s["pages"] for s in document["sites"]] == [1, 1, 0]
    queries = batch_queries(seen)
    assert len(queries) == 1, queries
    assert not BARE_REPORT.search(queries[0])
    with statements(engine) as seen:  # something new on the timeline: one more query
        assert client.get(f"/batches/{batch.id}/status.json?after=0").status_code == 200
    assert len(batch_queries(seen)) == 2


def test_api_batch_read_is_one_query_without_reports(app, client, engine, committed,
                                                     owner_batch):
    user, batch = owner_batch
    _user, headers = user_with_token(committed, email="api-hot@example.test")
    from models import Batch

    committed.execute(sa.update(Batch).where(Batch.id == batch.id).values(user_id=_user.id))
    committed.commit()
    client.get(f"/api/v1/batches/{batch.id}", headers=headers)  # first use: last_used_at
    with statements(engine) as seen:
        response = client.get(f"/api/v1/batches/{batch.id}", headers=headers)
    assert response.status_code == 200
    queries = batch_queries(seen)
    assert len(queries) == 1, queries
    assert not BARE_REPORT.search(queries[0])
