"""Task overhead: a no-op task through Rivalscope's base task against a bare Celery task.

Both run on the same Redis broker with the same settings (``celeryconfig``) in one
``celery worker --pool threads --concurrency N``; the task definitions live in
``bench/noop_tasks.py``. For each side the bench publishes ``--tasks`` messages, starts the
worker and times the queue draining (from the first message taken to the last one acked),
so worker start-up is not counted. Both no-op tasks do the database work every task does
(a session, ``SELECT 1``, a commit). The figures are the MEDIAN of ``--rounds`` alternating
runs per side.

    python bench/task_overhead.py [--tasks 5000] [--concurrency 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from common import (
    QUEUE,
    REDIS_URL,
    bench_env,
    flush_redis,
    log,
    prepare_database,
    ratio,
    redis_client,
    result_line,
    start_worker,
)

SIDES = {
    "bare": ("bench.noop_tasks:bare_app", "bench.bare_noop"),
    "ours": ("bench.noop_tasks:ours_app", "bench.noop"),
}


def publish(task_name: str, count: int) -> None:
    """Put ``count`` messages for ``task_name`` on the bench queue."""
    os.environ.update(bench_env())
    from bench.noop_tasks import build_bare

    client = build_bare()
    with client.producer_or_acquire() as producer:
        for _ in range(count):
            client.send_task(task_name, queue=QUEUE, producer=producer)


def drain_rate(target: str, count: int, concurrency: int, warmup: int) -> float:
    """Start a worker on the full queue; tasks/s between ``warmup`` taken and all acked."""
    redis = redis_client()
    worker = start_worker("noop-worker", target, bench_env(RIVALSCOPE_ROLE="worker"),
                          concurrency=concurrency)
    try:
        deadline = time.monotonic() + 240
        started = None
        left_at_start = 0
        while time.monotonic() < deadline:
            if not worker.alive():
                raise RuntimeError(f"worker exited:\n{worker.tail()}")
            left = redis.llen(QUEUE)
            if started is None and left <= count - warmup:
                started, left_at_start = time.monotonic(), left
            if started is not None and left == 0 and redis.hlen("unacked") == 0:
                return left_at_start / (time.monotonic() - started)
            time.sleep(0.005)
        raise RuntimeError(f"queue not drained in time (left {redis.llen(QUEUE)})")
    finally:
        worker.stop()
        redis.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per side")
    args = parser.parse_args()
    prepare_database()  # the base task's app verifies the database when its worker starts
    rates: dict[str, list[float]] = {"bare": [], "ours": []}
    try:
        for round_no in range(args.rounds):
            for side, (target, task_name) in SIDES.items():
                flush_redis()
                publish(task_name, args.tasks)
                rate = drain_rate(target, args.tasks, args.concurrency,
                                  warmup=min(200, args.tasks // 10))
                rates[side].append(rate)
                log(f"round {round_no + 1} {side}: {rate:.0f} tasks/s")
    finally:
        flush_redis()
    median = {side: statistics.median(values) for side, values in rates.items()}
    print(f"{args.tasks} no-op tasks per run, one worker --pool threads --concurrency "
          f"{args.concurrency}, broker {REDIS_URL}, median of {args.rounds}")
    print(f"bare celery.Task + Session        {median['bare']:8.0f} tasks/s   runs: "
          + ", ".join(f"{r:.0f}" for r in rates["bare"]))
    print(f"Rivalscope DatabaseTask (session) {median['ours']:8.0f} tasks/s   runs: "
          + ", ".join(f"{r:.0f}" for r in rates["ours"]))
    per_task_us = (1 / median["ours"] - 1 / median["bare"]) * 1e6
    print(f"ratio ours/baseline {ratio(median['ours'], median['bare'])} "
          f"(the base task costs about {per_task_us:.0f} us of worker time per task)")
    result_line("task_overhead", ours=f"{median['ours']:.0f}", baseline=f"{median['bare']:.0f}",
                unit="tasks/s", ratio=ratio(median["ours"], median["bare"]))


if __name__ == "__main__":
    main()
