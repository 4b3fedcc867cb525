"""Crawl throughput: Rivalscope's worker against a plain thread-pool fetcher.

Both fetch the same generated sites (every response delayed by ``--latency``) with the same
total concurrency. Rivalscope runs one ``celery worker --pool threads --concurrency N`` that
analyses a batch of every site (robots.txt, sitemap, every page parsed, analysed and stored
in PostgreSQL); the baseline is a ``ThreadPoolExecutor(N)`` of httpx clients that only
downloads the same pages.

    python bench/crawl.py [--sites 20] [--pages 50] [--latency 0.1] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import httpx
import sqlalchemy as sa
from common import (
    Sampler,
    bench_env,
    flush_redis,
    log,
    prepare_database,
    proc_status_kb,
    ratio,
    result_line,
    rivalscope_app,
    start_worker,
    wait_worker_ready,
)

if TYPE_CHECKING:
    from tests.sites import LocalSite


def page_urls(sites: list[LocalSite], pages: int) -> list[str]:
    """The homepage and /p1../p{pages-1} of every site: ``pages`` pages per site."""
    return [site.url + ("" if i == 0 else f"p{i}") for site in sites for i in range(pages)]


def baseline(urls: list[str], concurrency: int) -> tuple[float, int]:
    """Fetch every URL with a thread pool; returns (seconds, pages answered 200)."""
    local = threading.local()
    clients: list[httpx.Client] = []

    def fetch(url: str) -> int:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=30)
            clients.append(client)
        response = client.get(url)
        response.read()
        return response.status_code

    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        statuses = list(pool.map(fetch, urls))
    seconds = time.monotonic() - started
    for client in clients:
        client.close()
    return seconds, sum(1 for status in statuses if status == 200)


def rivalscope(sites: list[LocalSite], pages: int, concurrency: int) -> dict:
    """Analyse one batch of every site with one worker; returns figures and checks."""
    app = rivalscope_app()
    from models import Batch, Page, Site, db
    from tasks.analysis_tasks import start_batch
    from utils.database_access import get_sync_session
    from utils.db_operations import BatchOps, UserOps

    worker = start_worker("crawl-worker", "app:celery_app", bench_env(RIVALSCOPE_ROLE="worker"),
                          concurrency=concurrency)
    try:
        wait_worker_ready(worker)
        with app.app_context():
            engine = db.engine
            with get_sync_session(engine, scope="cli", owner="bench") as session:
                user = UserOps.create(session, "crawl@bench.test", "bench-password")
                batch = BatchOps.create(session, user.id, "crawl bench",
                                        [site.url for site in sites], pages)
                session.flush()
                batch_id = batch.id
            sampler = Sampler(worker.pid, "rivalscope-worker", every=0.5).start()
            started = time.monotonic()
            start_batch.delay(batch_id)
            status = "pending"
            deadline = started + 480
            while status not in ("completed", "partial", "failed") and time.monotonic() < deadline:
                if not worker.alive():
                    raise RuntimeError(f"worker exited:\n{worker.tail()}")
                time.sleep(0.1)
                with engine.connect() as connection:
                    status = connection.scalar(sa.select(Batch.status).where(
                        Batch.id == batch_id))
            seconds = time.monotonic() - started
            sampler.stop()
            peak_rss = proc_status_kb(worker.pid, "VmHWM")
            with engine.connect() as connection:
                analysed = connection.scalar(sa.select(sa.func.count()).select_from(Page)
                                             .where(Page.analysed.is_(True)))
                crawled = [r["pages_crawled"] if r else 0 for r in connection.scalars(
                    sa.select(Site.report).where(Site.batch_id == batch_id))]
            engine.dispose()
    finally:
        worker.stop()
    if worker.process.returncode not in (0, None):
        log(f"worker exit code {worker.process.returncode}")
    return {"status": status, "seconds": seconds, "analysed": analysed, "crawled": crawled,
            "peak_rss_mb": peak_rss / 1024, "peak_connections": sampler.peak_connections}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--pages", type=int, default=50, help="pages per site (with home)")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per response")
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    from tests.sites import LocalSite, SiteSpec  # the repository is on sys.path via common

    prepare_database()
    flush_redis()
    specs = [SiteSpec(title=f"Competitor {i}", pages=args.pages - 1, delay=args.latency)
             for i in range(args.sites)]
    sites = [LocalSite(spec).__enter__() for spec in specs]
    try:
        urls = page_urls(sites, args.pages)
        log(f"baseline: {len(urls)} pages, {args.concurrency} threads")
        base_seconds, base_ok = baseline(urls, args.concurrency)
        for spec in specs:
            spec.served.clear()
        log(f"rivalscope: one worker, --concurrency {args.concurrency}")
        ours = rivalscope(sites, args.pages, args.concurrency)
    finally:
        for site in sites:
            site.__exit__(None, None, None)
        flush_redis()
    expected = args.sites * args.pages
    base_rate = base_ok / base_seconds
    our_rate = ours["analysed"] / ours["seconds"]
    requests = sum(sum(spec.served.values()) for spec in specs)
    print(f"sites {args.sites} x pages {args.pages}, latency {args.latency * 1000:.0f} ms, "
          f"concurrency {args.concurrency}")
    print(f"baseline (thread pool + httpx)   {base_ok:5d} pages in {base_seconds:6.2f} s  "
          f"{base_rate:7.1f} pages/s")
    print(f"rivalscope (1 worker, threads)   {ours['analysed']:5d} pages in "
          f"{ours['seconds']:6.2f} s  {our_rate:7.1f} pages/s  (batch {ours['status']}, "
          f"{requests} HTTP requests incl. robots.txt and sitemap)")
    print(f"every page parsed and stored: {ours['analysed'] == expected} "
          f"(pages_crawled per site: min {min(ours['crawled'])} max {max(ours['crawled'])})")
    print(f"worker peak RSS {ours['peak_rss_mb']:.1f} MB, PostgreSQL connections "
          f"(rivalscope-worker) peak {ours['peak_connections']}")
    print(f"ratio ours/baseline {ratio(our_rate, base_rate)}")
    result_line("crawl", ours=f"{our_rate:.1f}", baseline=f"{base_rate:.1f}", unit="pages/s",
                ratio=ratio(our_rate, base_rate))


if __name__ == "__main__":
    main()
