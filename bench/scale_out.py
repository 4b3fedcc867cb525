"""Throughput with one worker host and with two (network namespaces, tests/drills/netlab.py).

Runs as root; re-runs itself under ``unshare --net --mount --pid`` (nothing leaves the
machine). A private PostgreSQL and Redis, gunicorn, and ``BENCH_SITES`` generated sites of
``BENCH_PAGES`` pages answering after 50 ms each. One batch of all the sites, submitted
through the web, first with a worker on ``worker-a`` only (baseline), then with a worker on
``worker-a`` and one on ``worker-b`` (ours); pages stored per second while 10% to 80% of
the pages were stored (the RESULT line), and from submission to completion (printed).
Also prints the CPU seconds each kind of process used in each run (on a 2-core machine the
hosts share the same two cores).

    sudo .venv/bin/python bench/scale_out.py

Settings: ``BENCH_SITES`` (48), ``BENCH_PAGES`` (30), ``BENCH_CONCURRENCY`` (threads per
worker, 8), ``BENCH_LATENCY`` (0.05).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import ratio, result_line  # noqa: E402
from tests.drills import netlab  # noqa: E402

SITES = int(os.environ.get("BENCH_SITES", 48))
PAGES = int(os.environ.get("BENCH_PAGES", 30))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", 8))
LATENCY = float(os.environ.get("BENCH_LATENCY", 0.05))
# Short, so the requeue (sent every 5 s here, as beat does every minute) restarts soon a
# pending site whose doorbell found no site to lease while the threads raced for them.
LEASE = int(os.environ.get("BENCH_LEASE_SECONDS", 10))
KINDS = (("worker", "celery"), ("web", "gunicorn"), ("sites", "scale_sites"),
         ("postgres", "postgres"), ("redis", "redis-server"))


def cpu_by_kind() -> dict[str, float]:
    """CPU seconds used so far by the live processes of each kind (this pid namespace)."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = dict.fromkeys([kind for kind, _ in KINDS], 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if cmdline.startswith("ip netns"):
            continue
        for kind, marker in KINDS:
            if marker in cmdline:
                found[kind] += (int(fields[11]) + int(fields[12])) / ticks
                break
    return found


def run(lab: netlab.Lab, hosts: tuple[str, ...], urls: list[str], label: str) -> float:
    workers = [lab.start_worker(host, concurrency=CONCURRENCY, name=f"{label}@{host}",
                                SITE_LEASE_SECONDS=str(LEASE))
               for host in hosts]
    engine = lab.engine()
    try:
        headers = lab.token(*netlab.USERS[0])
        before = cpu_by_kind()
        started = time.monotonic()
        batch_id = lab.submit(headers, urls, PAGES, label)
        last = started
        samples: list[tuple[float, int]] = []

        def done() -> bool:
            nonlocal last
            if time.monotonic() - last >= 5:  # what beat sends every minute
                last = time.monotonic()
                lab.send_task("pipeline.requeue_stalled_sites")
            with engine.connect() as connection:
                status = connection.exec_driver_sql(
                    f"SELECT status FROM batches WHERE id = {batch_id}").scalar()
                stored = connection.exec_driver_sql(
                    "SELECT count(*) FROM pages p JOIN sites s ON s.id = p.site_id "
                    f"WHERE s.batch_id = {batch_id}").scalar()
            samples.append((time.monotonic(), stored))
            return status in ("completed", "failed")

        lab.wait(done, 600, label, *workers, every=0.1)
        elapsed = time.monotonic() - started
        after = cpu_by_kind()
        not_leased = sum(w.output().count("'not leased'") for w in workers)
        with engine.connect() as connection:
            pages = connection.exec_driver_sql(
                "SELECT count(*) FROM pages p JOIN sites s ON s.id = p.site_id "
                f"WHERE s.batch_id = {batch_id}").scalar()
            completed = connection.exec_driver_sql(
                f"SELECT count(*) FROM sites WHERE batch_id = {batch_id} "
                "AND status = 'completed'").scalar()
    finally:
        engine.dispose()
        for worker in workers:
            worker.stop()
    cpu = {kind: round(after[kind] - before[kind], 1) for kind in after}
    rate = pages / elapsed
    steady = steady_rate(samples, pages)
    print(f"{label}: {len(hosts)} worker host(s) x {CONCURRENCY} threads, {completed}/{len(urls)} "
          f"sites completed ({not_leased} doorbells found no site), {pages} pages in "
          f"{elapsed:.1f} s = {rate:.1f} pages/s end to end, {steady:.1f} pages/s steady "
          f"(10%-80% of the pages); "
          f"CPU s: {cpu} (of {2 * elapsed:.0f} on 2 cores)", flush=True)
    return steady


def steady_rate(samples: list[tuple[float, int]], pages: int) -> float:
    """Pages/s between the moments 10% and 80% of the pages were stored: the throughput
    without the start (workers racing for the first sites) and the tail (the last sites)."""
    low = next(t for t, n in samples if n >= pages * 0.1)
    low_n = next(n for t, n in samples if n >= pages * 0.1)
    high, high_n = next((t, n) for t, n in samples if n >= pages * 0.8)
    return (high_n - low_n) / (high - low) if high > low else float("nan")


def inside() -> None:
    lab = netlab.Lab()
    try:
        lab.build()
        lab.setup_app()
        urls = lab.start_sites(SITES, PAGES, LATENCY)
        baseline = run(lab, ("worker-a",), urls, "one-host")
        ours = run(lab, ("worker-a", "worker-b"), urls, "two-hosts")
    finally:
        lab.destroy()
    result_line("scale_out", ours=f"{ours:.1f}", baseline=f"{baseline:.1f}", unit="pages/s",
                ratio=ratio(ours, baseline))


def main() -> None:
    if os.environ.get(netlab.INSIDE_ENV) == "1":
        inside()
        return
    reason = netlab.missing_tools()
    if reason:
        raise SystemExit(f"scale_out: {reason}")
    done = netlab.reexec_inside([sys.executable, str(Path(__file__).resolve())], timeout=1500)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr[-5000:])
    raise SystemExit(done.returncode)


if __name__ == "__main__":
    main()
