"""Web-side fault drills under gunicorn on a private PostgreSQL and Redis:
a gunicorn worker SIGKILLed mid-request, and the connection pool exhausted."""

from __future__ import annotations

import base64
import json
import os
import signal
import threading
import time

import httpx
import redis
import sqlalchemy as sa

from tests.drills.conftest import QUEUE, Drill, scalar, wait_for
from tests.processes import unexpected_tracebacks

URLS = [f"https://site-{i}.example/" for i in range(20)]


def queued_start_batches(drill: Drill) -> set[int]:
    """Batch ids of the start_batch messages waiting in the private broker."""
    client = redis.Redis.from_url(drill.redis.url)
    try:
        raw = client.lrange(QUEUE, 0, -1)
    finally:
        client.close()
    ids = set()
    for message in raw:
        envelope = json.loads(message)
        if envelope["headers"].get("task") == "pipeline.start_batch":
            args = json.loads(base64.b64decode(envelope["body"]))[0]
            ids.add(int(args[0]))
    return ids


def test_sigkill_gunicorn_worker_mid_request_loses_and_duplicates_nothing(drill: Drill):
    web, base = drill.start_web(workers=2, threads=4)
    try:
        headers = drill.token(base)
        outcomes: dict[str, int | str] = {}
        stop = threading.Event()

        def client(number: int) -> None:
            with httpx.Client(timeout=30) as http:
                for i in range(10_000):
                    if stop.is_set():
                        return
                    name = f"drill-a-{number}-{i}"
                    try:
                        response = http.post(f"{base}/api/v1/batches", headers=headers,
                                             json={"name": name, "urls": URLS, "max_pages": 1})
                        outcomes[name] = response.status_code
                    except httpx.HTTPError as error:
                        outcomes[name] = type(error).__name__

        clients = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for thread in clients:
            thread.start()
        killed = []
        try:
            for _ in range(2):
                time.sleep(1.5)
                workers = web.children()
                assert workers, "gunicorn has no worker to kill"
                os.kill(workers[0], signal.SIGKILL)
                killed.append(workers[0])
            time.sleep(1.5)
        finally:
            stop.set()
            for thread in clients:
                thread.join(60)
        assert web.alive(), "the gunicorn master died"
        # The master replaced the killed workers and the API answers again.
        wait_for(lambda: len(set(web.children()) - set(killed)) == 2, 30,
                 "gunicorn to replace its killed workers", web)
        after = httpx.post(f"{base}/api/v1/batches", headers=headers,
                           json={"name": "after-the-kills", "urls": URLS, "max_pages": 1},
                           timeout=30)
        assert after.status_code == 201, after.text
    finally:
        web.stop()

    created = {name for name, status in outcomes.items() if status == 201}
    interrupted = {name for name, status in outcomes.items() if status != 201}
    assert created, outcomes
    assert interrupted, "the kills interrupted no request: the drill proved nothing"
    assert all(isinstance(s, str) or s == 201 for s in outcomes.values()), \
        {n: s for n, s in outcomes.items() if not isinstance(s, str) and s != 201}
    engine = drill.engine()
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text(
                "SELECT b.id, b.name, b.total_urls, count(s.id) FROM batches b "
                "LEFT JOIN sites s ON s.batch_id = b.id GROUP BY b.id")).all()
    finally:
        engine.dispose()
    by_name: dict[str, list] = {}
    for row in rows:
        by_name.setdefault(row.name, []).append(row)
    # Nothing duplicated, nothing from nowhere, nothing partial.
    assert all(len(found) == 1 for found in by_name.values()), \
        {n: f for n, f in by_name.items() if len(f) > 1}
    assert set(by_name) <= created | interrupted | {"after-the-kills"}
    assert all(row[2] == row[3] == len(URLS) for row in rows), \
        [r for r in rows if not r[2] == r[3] == len(URLS)]
    # Nothing lost: every 201 is stored, and its start message was enqueued.
    assert created <= set(by_name), created - set(by_name)
    started = queued_start_batches(drill)
    created_ids = {by_name[name][0].id for name in created}
    assert created_ids <= started, created_ids - started


POOL_TIMEOUT = 2.0
LOCK_SECONDS = 3.0
MARGIN = 4.0


def test_pool_exhaustion_answers_503_in_time_and_leaks_nothing(drill: Drill):
    web, base = drill.start_web(workers=1, threads=100, DB_POOL_SIZE="5", DB_MAX_OVERFLOW="5",
                                DB_POOL_TIMEOUT=str(POOL_TIMEOUT))
    engine = drill.engine()
    try:
        headers = drill.token(base)
        created = httpx.post(f"{base}/api/v1/batches", headers=headers,
                             json={"name": "pool", "urls": URLS[:5]}, timeout=30)
        assert created.status_code == 201, created.text
        url = f"{base}/api/v1/batches/{created.json()['id']}"
        results: list[tuple[float, int, dict, str]] = []
        barrier = threading.Barrier(101)

        def one_request() -> None:
            with httpx.Client(timeout=60) as http:
                barrier.wait(30)
                started = time.monotonic()
                try:
                    response = http.get(url, headers=headers)
                    results.append((time.monotonic() - started, response.status_code,
                                    dict(response.headers), response.text))
                except httpx.HTTPError as error:
                    results.append((time.monotonic() - started, -1, {}, repr(error)))

        # Every query on ``batches`` blocks while this transaction holds the lock, so the
        # requests that got a connection keep it and the pool (5 + 5) runs dry.
        with engine.connect() as locker:
            locker.execute(sa.text("LOCK TABLE batches IN ACCESS EXCLUSIVE MODE"))
            threads = [threading.Thread(target=one_request) for _ in range(100)]
            for thread in threads:
                thread.start()
            barrier.wait(30)
            time.sleep(LOCK_SECONDS)
            locker.rollback()
        for thread in threads:
            thread.join(60)
        assert len(results) == 100

        statuses = sorted({r[1] for r in results})
        slowest = max(r[0] for r in results)
        assert set(statuses) <= {200, 503}, [r for r in results if r[1] not in (200, 503)][:3]
        unavailable = [r for r in results if r[1] == 503]
        assert unavailable, "the pool was never exhausted: the drill proved nothing"
        assert any(r[1] == 200 for r in results)
        for _seconds, _status, response_headers, body in unavailable:
            assert response_headers.get("retry-after"), response_headers
            assert json.loads(body)["error"]["code"] == "database_retryable", body
        # Waiting for the pool is bounded by pool_timeout; the lock holders by the lock.
        assert max(r[0] for r in unavailable) < POOL_TIMEOUT + MARGIN, slowest
        assert slowest < max(POOL_TIMEOUT, LOCK_SECONDS) + MARGIN, slowest

        # No connection leaked: the pool is whole again and nothing is left in a transaction.
        for _ in range(20):
            assert httpx.get(url, headers=headers, timeout=10).status_code == 200
        ready = httpx.get(f"{base}/health/ready", timeout=10).json()
        assert ready["sessions"]["checked_out"] <= 1, ready  # the readiness request's own
        wait_for(lambda: scalar(engine, "SELECT count(*) FROM pg_stat_activity WHERE "
                                "application_name = 'rivalscope-web' AND state LIKE "
                                "'idle in transaction%'") == 0, 10,
                 "no web backend idle in a transaction", web)
        connections = scalar(engine, "SELECT count(*) FROM pg_stat_activity "
                                     "WHERE application_name = 'rivalscope-web'")
        assert connections <= 10, connections
    finally:
        engine.dispose()
        output = web.stop()
    # Pool timeouts may be logged with their traceback; nothing else may be.
    assert unexpected_tracebacks(output, allowed=("TimeoutError",)) == []
