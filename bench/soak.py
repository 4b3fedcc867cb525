"""Soak: many pages through one worker; its memory and database connections must stay flat.

Generated sites without latency (``--sites`` x ``--pages``, default 100 x 100 = 10,000 pages)
are analysed by one ``celery worker --pool threads``; every ``--every`` seconds the bench
samples the worker's RSS and its PostgreSQL connections (application_name
``rivalscope-worker``). Growth is measured over the second half of the run (from the sample
where half the pages were stored to the last one): RSS growth must stay under 10 % and the
connection count must not grow.

    python bench/soak.py [--sites 100] [--pages 100] [--concurrency 4] [--every 3]
"""

from __future__ import annotations

import argparse
import time

import sqlalchemy as sa
from common import (
    Sampler,
    bench_env,
    flush_redis,
    log,
    pg_engine,
    prepare_database,
    result_line,
    rivalscope_app,
    start_worker,
    wait_worker_ready,
)

MAX_SECONDS = 540


def growth(samples: list[tuple[float, int, int, int]], total: int) -> dict:
    """RSS and connection growth over the second half (by pages stored)."""
    usable = [s for s in samples if s[1] > 0 and s[2] >= 0]
    half = next((i for i, s in enumerate(usable) if s[3] >= total // 2), len(usable) - 1)
    first, second = usable[:half + 1], usable[half:]
    rss_mid, rss_end = second[0][1], second[-1][1]
    return {
        "rss_mid_mb": rss_mid / 1024, "rss_end_mb": rss_end / 1024,
        "rss_max_mb": max(s[1] for s in usable) / 1024,
        "rss_growth_pct": 100 * (rss_end - rss_mid) / rss_mid,
        "conns_first_half_max": max(s[2] for s in first),
        "conns_second_half_max": max(s[2] for s in second),
        "connections_growth": max(s[2] for s in second) - max(s[2] for s in first),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--pages", type=int, default=100, help="pages per site (with home)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--every", type=float, default=3.0, help="seconds between samples")
    args = parser.parse_args()
    prepare_database()
    flush_redis()
    app = rivalscope_app()
    from models import Batch, db
    from tasks.analysis_tasks import start_batch
    from tests.sites import LocalSite, SiteSpec
    from utils.database_access import get_sync_session
    from utils.db_operations import BatchOps, UserOps

    sites = [LocalSite(SiteSpec(title=f"Soak {i}", pages=args.pages - 1)).__enter__()
             for i in range(args.sites)]
    counter = pg_engine()

    def pages_stored() -> int:
        with counter.connect() as connection:
            return connection.scalar(sa.text("SELECT count(*) FROM pages WHERE analysed"))

    # The snapshot publisher's one background connection opens at its first publish:
    # publish early so it is part of the steady state, not "growth" in the second half.
    worker_env = bench_env(RIVALSCOPE_ROLE="worker", SNAPSHOT_INTERVAL_SECONDS="2")
    worker = start_worker("soak-worker", "app:celery_app", worker_env,
                          concurrency=args.concurrency)
    try:
        wait_worker_ready(worker)
        with app.app_context(), get_sync_session(db.engine, scope="cli",
                                                 owner="bench") as session:
            user = UserOps.create(session, "soak@bench.test", "bench-password")
            batch = BatchOps.create(session, user.id, "soak", [s.url for s in sites],
                                    args.pages)
            session.flush()
            batch_id = batch.id
        sampler = Sampler(worker.pid, "rivalscope-worker", every=args.every,
                          extra=pages_stored).start()
        started = time.monotonic()
        with app.app_context():
            start_batch.delay(batch_id)
        status = "pending"
        while status not in ("completed", "partial", "failed"):
            if time.monotonic() - started > MAX_SECONDS:
                log("soak: time budget exhausted, stopping early")
                break
            if not worker.alive():
                raise RuntimeError(f"worker exited:\n{worker.tail()}")
            time.sleep(1)
            with counter.connect() as connection:
                status = connection.scalar(sa.select(Batch.status).where(Batch.id == batch_id))
        seconds = time.monotonic() - started
        time.sleep(args.every)  # one sample after the end
        sampler.stop()
    finally:
        worker.stop()
        for site in sites:
            site.__exit__(None, None, None)
        flush_redis()
    stored = pages_stored()
    counter.dispose()
    figures = growth(sampler.samples, stored)
    print(f"{args.sites} sites x {args.pages} pages, one worker --concurrency "
          f"{args.concurrency}: {stored} pages analysed in {seconds:.0f} s "
          f"({stored / seconds:.1f} pages/s), batch {status}")
    print(f"{'t (s)':>7} {'pages':>7} {'RSS (MB)':>9} {'PG conns':>9}")
    step = max(1, len(sampler.samples) // 25)
    for t, rss, conns, pages in sampler.samples[::step]:
        print(f"{t:7.0f} {pages:7d} {rss / 1024:9.1f} {conns:9d}")
    print(f"RSS at half-way {figures['rss_mid_mb']:.1f} MB, at the end "
          f"{figures['rss_end_mb']:.1f} MB, max {figures['rss_max_mb']:.1f} MB: growth over "
          f"the second half {figures['rss_growth_pct']:.1f} % (target < 10 %)")
    print(f"PostgreSQL connections: max {figures['conns_first_half_max']} in the first half, "
          f"{figures['conns_second_half_max']} in the second (growth "
          f"{figures['connections_growth']}, target <= 0)")
    result_line("soak", rss_growth_pct=f"{figures['rss_growth_pct']:.1f}",
                connections_growth=figures["connections_growth"])


if __name__ == "__main__":
    main()
