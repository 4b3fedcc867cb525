"""Crawl throughput on realistic pages: Rivalscope's full pipeline against a thread-pool crawler.

Sites: ``bench/realistic_sites.py`` (its own process): ``--sites`` origins × ``--pages`` pages
of 30–57 KB HTML (title, meta description, h1–h3, paragraphs, images, 20–40 internal links
as relative, absolute and #fragment hrefs, a robots.txt-disallowed link, 3–5 external
links), each response delayed by the latency under test.

Baseline: ``bench/crawl_baseline.py`` (its own process): a ``ThreadPoolExecutor`` of
``--concurrency`` threads that fetches with httpx AND parses with selectolax (title + link
extraction), follows internal links breadth-first and obeys robots.txt.

Ours: the full pipeline. ``--workers`` ``celery worker --pool threads`` processes sharing
``--concurrency`` threads, Redis broker, PostgreSQL; one batch of every site with
``max_pages=--pages``, politeness delay 0, timed from ``start_batch`` to the batch's
``completed`` (robots.txt, sitemap, every page fetched, parsed, analysed and stored, the
reports, scores and the comparison computed).

CPU ms per page: the baseline process's CPU time; for ours, the CPU time of the worker
process trees (every process a worker forked included) over the run. Peak RSS: the summed
RSS of the worker trees, sampled every 0.2 s.

    python bench/crawl.py [--sites 20] [--pages 50] [--latency-ms 100 0] [--concurrency 32]
                          [--workers 2] [--runs 1] [--py-spy PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

import sqlalchemy as sa
from common import (
    INSTANCE,
    PYTHON,
    ROOT,
    Sampler,
    TreeSampler,
    bench_env,
    flush_redis,
    log,
    own_cpu_seconds,
    prepare_database,
    ratio,
    result_line,
    rivalscope_app,
    start_worker,
    tree_cpu_seconds,
    tree_pids,
    wait_worker_ready,
)

BENCH = Path(__file__).resolve().parent
PY_SPY_RATE = 250  # samples per second


class SiteServer:
    """``bench/realistic_sites.py`` in its own process."""

    def __init__(self, sites: int, pages: int, latency_ms: float) -> None:
        self.process = subprocess.Popen(
            [PYTHON, str(BENCH / "realistic_sites.py"), "--sites", str(sites), "--pages",
             str(pages), "--latency-ms", str(latency_ms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        info = json.loads(self.process.stdout.readline())
        self.urls: list[str] = info["urls"]
        self.sizes = (info["min_bytes"], info["max_bytes"])

    def ask(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(20)


def run_baseline(server: SiteServer, pages: int, concurrency: int) -> dict:
    server.ask("reset")
    done = subprocess.run([PYTHON, str(BENCH / "crawl_baseline.py"), "--concurrency",
                           str(concurrency), "--pages", str(pages), *server.urls],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"baseline failed:\n{done.stderr}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["served"] = server.ask("counts")
    figures["timeline"] = server.ask("timeline")
    figures["rate"] = figures["pages"] / figures["seconds"]
    figures["cpu_ms"] = 1000 * figures["cpu_seconds"] / max(1, figures["pages"])
    figures["rss_mb"] = figures["max_rss_kb"] / 1024
    return figures


PAGE_CHILDREN = 4  # PAGE_POOL_MAX_CHILDREN's default


def start_workers(count: int, concurrency: int, per_origin: int = 1) -> list:
    env = bench_env(RIVALSCOPE_ROLE="worker", FETCH_PER_ORIGIN=str(per_origin))
    per_worker = max(1, concurrency // count)
    workers = [start_worker(f"crawl-worker-{index}", "app:celery_app", env,
                            concurrency=per_worker) for index in range(count)]
    for worker in workers:
        wait_worker_ready(worker)
    # a worker starts its page-analysis children once ready; the run starts when they are up
    deadline = time.monotonic() + 30
    while (time.monotonic() < deadline
           and any(len(tree_pids(worker.pid)) <= PAGE_CHILDREN for worker in workers)):
        time.sleep(0.05)
    time.sleep(0.5)
    return workers


def profile(py_spy: str, pid: int, seconds: int, *, tree: bool = False) -> subprocess.Popen:
    """Attach py-spy to the first worker for ``seconds`` (it writes a raw flame file): its
    GIL-holding samples, or with ``tree`` the on-CPU samples of the worker and its
    page-analysis children."""
    out = INSTANCE.parent / f"crawl-worker-{pid}.pyspy.txt"
    log(f"py-spy profile of worker {pid} -> {out}")
    mode = ["--subprocesses"] if tree else ["--gil"]
    if os.environ.get("BENCH_PY_SPY_IDLE"):  # wall clock: every thread, waiting or not
        mode = ["--idle"]
    return subprocess.Popen([py_spy, "record", "--format", "raw", "--rate", str(PY_SPY_RATE),
                             *mode,
                             "--duration", str(seconds), "--pid", str(pid), "--output",
                             str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_ours(app, server: SiteServer, pages: int, args: argparse.Namespace, per_origin: int,
             label: str) -> dict:
    """One batch of every site through the pipeline; figures and checks."""
    from models import Batch, Page, Site, db
    from tasks.analysis_tasks import start_batch
    from utils.database_access import get_sync_session
    from utils.db_operations import BatchOps, UserOps

    server.ask("reset")
    workers = start_workers(args.workers, args.concurrency, per_origin)
    try:
        with app.app_context():
            engine = db.engine
            with get_sync_session(engine, scope="cli", owner="bench") as session:
                user = UserOps.create(session, f"crawl-{label}@bench.test", "bench-password")
                batch = BatchOps.create(session, user.id, "crawl bench", server.urls, pages)
                session.flush()
                batch_id = batch.id
            pids = [worker.pid for worker in workers]
            sampler = Sampler(pids[0], "rivalscope-worker", every=0.5).start()
            rss = TreeSampler(pids).start()
            cpu0 = sum(tree_cpu_seconds(pid) for pid in pids)
            own0 = sum(own_cpu_seconds(pid) for pid in pids)
            sys0 = sum(own_cpu_seconds(pid, system_only=True) for pid in pids)
            started, started_wall = time.monotonic(), time.time()
            start_batch.delay(batch_id)
            spy = (profile(args.py_spy, pids[0], args.profile_seconds, tree=args.py_spy_tree)
                   if args.py_spy else None)
            status = "pending"
            deadline = started + 600
            while status not in ("completed", "partial", "failed") and time.monotonic() < deadline:
                if not all(worker.alive() for worker in workers):
                    raise RuntimeError(f"a worker exited:\n{workers[0].tail()}")
                time.sleep(0.05)
                with engine.connect() as connection:
                    status = connection.scalar(sa.select(Batch.status).where(
                        Batch.id == batch_id))
            seconds, done_wall = time.monotonic() - started, time.time()
            cpu = sum(tree_cpu_seconds(pid) for pid in pids) - cpu0
            own = sum(own_cpu_seconds(pid) for pid in pids) - own0
            system = sum(own_cpu_seconds(pid, system_only=True) for pid in pids) - sys0
            peak_rss_kb = rss.stop()
            sampler.stop()
            with engine.connect() as connection:
                analysed = connection.scalar(
                    sa.select(sa.func.count()).select_from(Page).join(Site)
                    .where(Site.batch_id == batch_id, Page.analysed.is_(True)))
                crawled = [r["pages_crawled"] if r else 0 for r in connection.scalars(
                    sa.select(Site.report).where(Site.batch_id == batch_id))]
            engine.dispose()
            if spy is not None:
                spy.wait(args.profile_seconds + 30)
    finally:
        for worker in workers:
            worker.stop()
    return {"status": status, "seconds": seconds, "pages": analysed, "crawled": crawled,
            "rate": analysed / seconds, "cpu_ms": 1000 * cpu / max(1, analysed),
            "own_cpu_ms": 1000 * own / max(1, analysed),
            "own_sys_ms": 1000 * system / max(1, analysed),
            "rss_mb": peak_rss_kb / 1024, "connections": sampler.peak_connections,
            "served": server.ask("counts"),
            "timeline": summarise_timeline(server.ask("timeline"), started_wall, done_wall)}


def summarise_timeline(served: dict, started: float, done: float) -> dict:
    """Where the wall time of our run went, from the site server's own clock: how long
    until each site's first request, each site's crawl, the time a site had no request in
    flight, and how long after the last answer the batch was seen completed."""
    sites = served["sites"]

    def median(key):
        return statistics.median(key(site) for site in sites.values())
    return {"first": median(lambda s: s["first"] - started),
            "first_max": max(s["first"] - started for s in sites.values()),
            "crawl": median(lambda s: s["last"] - s["first"]),
            "idle": median(lambda s: s["idle"]),
            "tail": done - max(s["last"] for s in sites.values()),
            "in_flight_mean": served["in_flight_mean"],
            "in_flight_peak": served["in_flight_peak"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--pages", type=int, default=50, help="pages per site (with home)")
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[100.0, 0.0])
    parser.add_argument("--concurrency", type=int, default=32,
                        help="total: baseline threads = worker threads over all workers")
    parser.add_argument("--workers", type=int, default=2, help="celery worker processes")
    parser.add_argument("--per-origin", type=int, nargs="+", default=[1, 2],
                        help="FETCH_PER_ORIGIN values: requests in flight per site, each run "
                             "against the same baseline run (default: 1, the product "
                             "default, and 2)")
    parser.add_argument("--runs", type=int, default=1, help="runs per latency (median shown)")
    parser.add_argument("--py-spy", help="path of py-spy: profile the first worker")
    parser.add_argument("--profile-seconds", type=int, default=20)
    parser.add_argument("--py-spy-tree", action="store_true",
                        help="profile on-CPU samples of the worker and its analysis children "
                             "(default: the worker's GIL-holding samples)")
    args = parser.parse_args()

    prepare_database()
    flush_redis()
    app = rivalscope_app()
    per_worker = max(1, args.concurrency // args.workers)
    print(f"{args.sites} sites x {args.pages} pages; concurrency {args.concurrency} "
          f"(baseline threads; ours {args.workers} worker(s) x {per_worker} threads, "
          f"FETCH_PER_ORIGIN {', '.join(map(str, args.per_origin))})")
    results = []
    try:
        for latency in args.latency_ms:
            server = SiteServer(args.sites, args.pages, latency)
            try:
                runs: list[tuple[dict, dict[int, dict]]] = []
                for run in range(args.runs):
                    log(f"latency {latency:.0f} ms run {run + 1}: baseline")
                    base = run_baseline(server, args.pages, args.concurrency)
                    print(f"\nlatency {latency:.0f} ms, run {run + 1} (pages "
                          f"{server.sizes[0] // 1024}-{server.sizes[1] // 1024} KB)")
                    print_side("baseline (threads+httpx+selectolax)", base)
                    ours_by_setting = {}
                    for per_origin in args.per_origin:
                        log(f"latency {latency:.0f} ms run {run + 1}: rivalscope, "
                            f"FETCH_PER_ORIGIN={per_origin}")
                        ours = run_ours(app, server, args.pages, args, per_origin,
                                        f"{latency:.0f}ms-{run}-{per_origin}")
                        flush_redis()
                        ours_by_setting[per_origin] = ours
                        print_ours(ours, base, args, per_origin, latency)
                    runs.append((base, ours_by_setting))
            finally:
                server.close()
            results.append((latency, runs))
    finally:
        flush_redis()
    print()
    for latency, runs in results:
        base_rate = statistics.median(b["rate"] for b, _ in runs)
        for per_origin in args.per_origin:
            our_rate = statistics.median(o[per_origin]["rate"] for _, o in runs)
            name = f"crawl_{latency:.0f}ms" + ("" if per_origin == 1
                                               else f"_per_origin_{per_origin}")
            if len(runs) > 1:
                print(f"{name} ratios: " + ", ".join(
                    ratio(o[per_origin]["rate"], b["rate"]) for b, o in runs))
            result_line(name, ours=f"{our_rate:.1f}", baseline=f"{base_rate:.1f}",
                        unit="pages/s", ratio=ratio(our_rate, base_rate))


def print_side(name: str, fig: dict) -> None:
    flight = fig["timeline"]
    print(f"  {name:<36} {fig['pages']:5d} pages {fig['seconds']:6.2f} s "
          f"{fig['rate']:7.1f} pages/s  CPU {fig['cpu_ms']:5.1f} ms/page  "
          f"peak RSS {fig['rss_mb']:6.1f} MB  requests {fig['served']['requests']} (repeated "
          f"{fig['served']['repeated']}), in flight mean {flight['in_flight_mean']:.1f} "
          f"peak {flight['in_flight_peak']}")


def print_ours(ours: dict, base: dict, args: argparse.Namespace, per_origin: int,
               latency_ms: float) -> None:
    """Our run's line, its checks, where its time went, and the floor FETCH_PER_ORIGIN sets."""
    print_side(f"rivalscope, FETCH_PER_ORIGIN={per_origin}", ours)
    expected = args.sites * args.pages
    print(f"    every page stored: {ours['pages'] == expected} (batch {ours['status']}, "
          f"pages_crawled per site min {min(ours['crawled'])} max {max(ours['crawled'])}); "
          f"CPU ms/page: worker processes {ours['own_cpu_ms']:.1f} (system "
          f"{ours['own_sys_ms']:.1f}), analysis children "
          f"{ours['cpu_ms'] - ours['own_cpu_ms']:.1f}; PostgreSQL connections peak "
          f"{ours['connections']}")
    line = ours["timeline"]
    print(f"    timeline (median per site): first request after {line['first']:.2f} s "
          f"(last site {line['first_max']:.2f} s), crawl {line['crawl']:.2f} s, no request "
          f"in flight {line['idle']:.2f} s; batch seen completed {line['tail']:.2f} s after "
          f"the last answer")
    # robots.txt, the homepage and the sitemap go one after another; then the other pages
    # per_origin at a time: no crawl of a site can be shorter than that many latencies
    rounds = 3 + -(-(args.pages - 1) // per_origin)
    floor = rounds * latency_ms / 1000
    if floor:
        print(f"    latency floor per site: {rounds} x {latency_ms:.0f} ms = {floor:.1f} s, "
              f"so at most {ratio(base['seconds'], floor)} of this baseline run")
    print(f"    ratio {ratio(ours['rate'], base['rate'])}", flush=True)

if __name__ == "__main__":
    main()
