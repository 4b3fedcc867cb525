"""Service fault drills: the private PostgreSQL and Redis restarted while a batch runs.
Web and worker are never restarted; the batch must still complete, with nothing duplicated."""

from __future__ import annotations

import time

import httpx

from tests.drills.conftest import (
    Drill,
    assert_batch_complete_without_duplicates,
    scalar,
    wait_for,
)
from tests.sites import LocalSite, SiteSpec

POOL_TIMEOUT = 2.0
MARGIN = 5.0  # connect_timeout-free refusals answer at once; this bounds a slow teardown


def submit(base: str, headers: dict, urls: list[str], max_pages: int) -> int:
    response = httpx.post(f"{base}/api/v1/batches", headers=headers, timeout=30,
                          json={"name": "drill", "urls": urls, "max_pages": max_pages})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def stored_pages(engine) -> int:
    return scalar(engine, "SELECT count(*) FROM pages") or 0


def test_postgres_restart_mid_batch_web_503_then_recovers_and_batch_completes(drill: Drill):
    specs = [SiteSpec(title=f"Pg {i}", pages=14, delay=0.1) for i in range(3)]
    sites = [LocalSite(spec).__enter__() for spec in specs]
    web, base = drill.start_web(workers=1, threads=4, DB_POOL_TIMEOUT=str(POOL_TIMEOUT))
    worker = drill.start_worker(concurrency=3)
    engine = drill.engine()
    try:
        headers = drill.token(base)
        batch_id = submit(base, headers, [s.url for s in sites], max_pages=12)
        batch_url = f"{base}/api/v1/batches/{batch_id}"
        wait_for(lambda: stored_pages(engine) >= 4, 60, "pages to be stored", web, worker)

        assert scalar(engine, "SELECT status FROM batches WHERE id = :id",
                      id=batch_id) == "running"
        drill.pg.stop("fast")
        outage: list[tuple[float, int, str | None]] = []
        try:
            for _ in range(6):
                started = time.monotonic()
                response = httpx.get(batch_url, headers=headers, timeout=30)
                outage.append((time.monotonic() - started, response.status_code,
                               response.headers.get("Retry-After")))
                time.sleep(0.3)
        finally:
            drill.pg.start()
        assert {status for _, status, _ in outage} == {503}, outage
        assert all(retry for _, _, retry in outage), outage
        assert max(seconds for seconds, _, _ in outage) < POOL_TIMEOUT + MARGIN, outage

        # The same web process recovers on its own.
        wait_for(lambda: httpx.get(batch_url, headers=headers, timeout=30).status_code == 200,
                 30, "the web to answer 200 again", web)
        # The same worker finishes the batch (its tasks retried with backoff).
        wait_for(lambda: scalar(engine, "SELECT status FROM batches WHERE id = :id",
                                id=batch_id) in ("completed", "partial", "failed"),
                 150, "the batch to finish", worker, web)
        body = httpx.get(batch_url, headers=headers, timeout=30).json()
        assert body["status"] == "completed" and body["progress"] == 100, body
        assert_batch_complete_without_duplicates(engine, batch_id, pages=12)
    finally:
        engine.dispose()
        output = worker.stop()
        web.stop()
        for site in sites:
            site.__exit__(None, None, None)
    assert "OperationalError" in output  # the worker did meet the outage (and retried)
    refetched = sum(max(0, n - 1) for spec in specs for path, n in spec.served.items()
                    if path.startswith("/p"))
    # at most the pages in flight: the crawl's window (FETCH_PER_ORIGIN + 1) per site
    assert refetched <= 2 * len(specs), refetched


def test_redis_restart_mid_batch_workers_reconnect_and_batch_completes(drill: Drill):
    specs = [SiteSpec(title=f"Redis {i}", pages=10, delay=0.1) for i in range(5)]
    sites = [LocalSite(spec).__enter__() for spec in specs]
    web, base = drill.start_web(workers=1, threads=4)
    worker = drill.start_worker(concurrency=2, SITE_LEASE_SECONDS="3")
    engine = drill.engine()
    try:
        headers = drill.token(base)
        batch_id = submit(base, headers, [s.url for s in sites], max_pages=8)
        wait_for(lambda: stored_pages(engine) >= 3, 60, "pages to be stored", web, worker)
        # Two sites are running; the others wait as messages in Redis, which loses them.
        assert scalar(engine, "SELECT count(*) FROM sites WHERE status = 'pending'") >= 1
        drill.redis.stop()
        time.sleep(2)
        drill.redis.start()
        assert worker.alive()

        def finished() -> bool:
            status = scalar(engine, "SELECT status FROM batches WHERE id = :id", id=batch_id)
            if status in ("completed", "partial", "failed"):
                return True
            # What beat does every minute: re-enqueue sites whose lease expired or whose
            # message was lost (pending in a running batch).
            drill.send_task("pipeline.requeue_stalled_sites")
            return False

        wait_for(finished, 150, "the batch to finish after the Redis restart", worker, web,
                 every=3.0)
        assert_batch_complete_without_duplicates(engine, batch_id, pages=8)
    finally:
        engine.dispose()
        output = worker.stop()
        web.stop()
        for site in sites:
            site.__exit__(None, None, None)
    assert output.count("Connected to redis") >= 2, output[-3000:]  # it reconnected
    refetched = sum(max(0, n - 1) for spec in specs for path, n in spec.served.items()
                    if path.startswith("/p"))
    assert refetched <= 2 * len(specs), refetched  # the crawl's window per site
