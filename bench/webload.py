"""The two web benchmarks' shared run: Rivalscope and the baseline app under the same
gunicorn settings, each loaded by the same bounded generator (``common.run_load``)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from common import (
    LoadStats,
    bench_env,
    flask_cli,
    flush_redis,
    free_port,
    log,
    prepare_database,
    redis_client,
    start_gunicorn,
)
from common import run_load as load

EMAIL = "bench@bench.test"
PASSWORD = "bench-password"
URLS = [f"https://competitor-{i}.example/" for i in range(50)]

Request = Callable[[httpx.Client], httpx.Response]


@dataclass
class Ours:
    """What a Rivalscope request needs: base URL, bearer header, a 50-site batch's id."""

    base: str
    headers: dict[str, str]
    batch_id: int


def arguments(doc: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0,
                        help="seconds of load per side, split over the rounds")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating rounds (ours, baseline, ...) against machine noise")
    parser.add_argument("--threads", type=int, default=8, help="load generator threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (both sides)")
    parser.add_argument("--web-threads", type=int, default=4, help="gunicorn threads per worker")
    return parser.parse_args()


def batch_payload(name: str = "bench") -> dict:
    return {"name": name, "urls": URLS, "max_pages": 10}


def run_both(args: argparse.Namespace, ours_request: Callable[[Ours], Request],
             baseline_request: Callable[[str, int], Request]) -> tuple[LoadStats, LoadStats]:
    """Start both apps, then load them in alternating rounds; returns (ours, baseline)."""
    prepare_database()
    flush_redis()
    os.environ.update(bench_env())
    from bench.baseline_app import init_schema

    item_id = init_schema()
    flask_cli("users", "create", EMAIL, "--password", PASSWORD)
    ours_port, baseline_port = free_port(), free_port()
    base = f"http://127.0.0.1:{ours_port}"
    servers = [start_gunicorn("rivalscope-web", "app:app", ours_port,
                              bench_env(RIVALSCOPE_ROLE="web"), workers=args.workers,
                              threads=args.web_threads)]
    try:
        servers.append(start_gunicorn("baseline-web", "bench.baseline_app:app", baseline_port,
                                      bench_env(), workers=args.workers,
                                      threads=args.web_threads))
        token = httpx.post(f"{base}/api/v1/tokens", json={"email": EMAIL, "password": PASSWORD},
                           timeout=30).raise_for_status().json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        created = httpx.post(f"{base}/api/v1/batches", json=batch_payload("fixture"),
                             headers=headers, timeout=30).raise_for_status().json()
        ours_call = ours_request(Ours(base, headers, created["id"]))
        baseline_call = baseline_request(f"http://127.0.0.1:{baseline_port}", item_id)
        ours, baseline = [], []
        share = args.duration / args.rounds
        for round_no in range(1, args.rounds + 1):
            log(f"round {round_no}/{args.rounds}: rivalscope {share:.0f} s, then baseline")
            ours.append(load(ours_call, duration=share, threads=args.threads, warmup=1.0))
            baseline.append(load(baseline_call, duration=share, threads=args.threads,
                                 warmup=1.0))
    finally:
        for server in servers:
            server.stop()
    queued = purge_queue()
    log(f"purged {queued} start_batch messages (no worker ran)")
    return LoadStats.combine(ours), LoadStats.combine(baseline)


def purge_queue() -> int:
    """Empty the bench queue; returns how many messages it held."""
    from common import QUEUE

    client = redis_client()
    count = client.llen(QUEUE)
    flush_redis()
    client.close()
    return count


def settings_line(args: argparse.Namespace) -> str:
    return (f"gunicorn --worker-class gthread --workers {args.workers} --threads "
            f"{args.web_threads} (both apps); load: {args.threads} threads x httpx keep-alive, "
            f"{args.duration:.0f} s per side in {args.rounds} alternating rounds (each after "
            "1 s warm-up)")
