"""The Redis politeness gate: gap and in-flight limit across processes, crawl-delay, the
fallback when Redis is unreachable, and which gate the workers choose."""

from __future__ import annotations

import itertools
import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis

from analysis.politeness import Politeness
from tasks.crawl_tools import politeness_gate
from tests.conftest import free_port
from utils.redis_gate import RedisGate

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL (Redis run)")
ORIGIN = "http://competitor.example.test/"

# One process: ``count`` requests through the gate, each holding its slot ``hold`` seconds;
# prints [[start, end], ...] (wall clock, shared by the processes of this machine). Both
# processes start their loops at the same moment.
CLIENT = """
import json, sys, time
from utils.redis_gate import RedisGate
url, prefix, count, hold, delay, conc, start_at = sys.argv[1:8]
gate = RedisGate(url, prefix=prefix, default_delay=float(delay), concurrency=int(conc))
time.sleep(max(0.0, float(start_at) - time.time()))  # both processes begin together
spans = []
for _ in range(int(count)):
    with gate.slot("http://competitor.example.test/page"):
        start = time.time()
        time.sleep(float(hold))
        spans.append([start, time.time()])
print(json.dumps(spans))
"""


@pytest.fixture
def prefix() -> str:
    """A key prefix of its own; its keys are deleted afterwards."""
    name = f"test-gate-{uuid.uuid4().hex}:"
    yield name
    if REDIS_URL:
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"{name}*"):
            client.delete(key)
        client.close()


def _spans_per_process(prefix: str, *, count: int, hold: float, delay: float,
                       concurrency: int) -> list[list[list[float]]]:
    import time

    argv = [sys.executable, "-c", CLIENT, REDIS_URL, prefix, str(count), str(hold),
            str(delay), str(concurrency), str(time.time() + 2.0)]
    procs = [subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    spans = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        spans.append(json.loads(out))
    return spans


def _two_processes(prefix: str, *, count: int, hold: float, delay: float,
                   concurrency: int) -> list[list[float]]:
    per_process = _spans_per_process(prefix, count=count, hold=hold, delay=delay,
                                     concurrency=concurrency)
    return sorted(span for spans in per_process for span in spans)


@needs_redis
def test_two_processes_keep_the_gap_between_requests(prefix: str) -> None:
    spans = _two_processes(prefix, count=4, hold=0.05, delay=0.3, concurrency=1)
    assert len(spans) == 8
    gaps = [b[0] - a[1] for a, b in zip(spans, spans[1:], strict=False)]
    # One request at a time, and 0.3 s from the end of one to the start of the next
    # (Redis keeps milliseconds: 5 ms of rounding allowed).
    assert min(gaps) >= 0.3 - 0.005, gaps


@needs_redis
def test_waiting_processes_take_turns(prefix: str) -> None:
    """The gate serves waiters in arrival order: a process that asks again right after its
    request does not jump ahead of one already waiting (two hosts crawling one competitor
    both make progress, instead of one running its whole crawl while the other starves)."""
    per_process = _spans_per_process(prefix, count=6, hold=0.02, delay=0.1, concurrency=1)
    order = [who for _, who in sorted((span[0], who) for who, spans in enumerate(per_process)
                                      for span in spans)]
    assert len(order) == 12
    # Until one process has made its last request, both were waiting: no one goes 3 in a row.
    first_to_finish = min(max(i for i, w in enumerate(order) if w == who) for who in (0, 1))
    runs = [len(list(run)) for _, run in itertools.groupby(order[:first_to_finish + 1])]
    assert max(runs) <= 2, order


@needs_redis
def test_two_processes_never_exceed_the_in_flight_limit(prefix: str) -> None:
    spans = _two_processes(prefix, count=5, hold=0.2, delay=0.0, concurrency=2)
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans],
                    key=lambda item: (item[0], item[1]))
    in_flight, most = 0, 0
    for _, step in events:
        in_flight += step
        most = max(most, in_flight)
    assert most == 2  # both slots used, never a third


@needs_redis
def test_a_crawl_delay_applies_to_every_gate(prefix: str) -> None:
    first = RedisGate(REDIS_URL, prefix=prefix, default_delay=0.0, max_delay=0.5)
    second = RedisGate(REDIS_URL, prefix=prefix, default_delay=0.0, max_delay=0.5)
    assert first.set_crawl_delay(ORIGIN, 3) == 0.5  # capped by max_delay
    assert second.delay_for(ORIGIN) == 0.5
    import time

    with first.slot(ORIGIN):
        ended = time.time()
    with second.slot(ORIGIN):
        started = time.time()
    assert started - ended >= 0.5 - 0.005
    first.set_crawl_delay(ORIGIN, None)
    assert second.delay_for(ORIGIN) == 0.0


def test_unreachable_redis_falls_back_to_the_process_gate_and_logs(
        caplog: pytest.LogCaptureFixture) -> None:
    gate = RedisGate(f"redis://127.0.0.1:{free_port()}/0", default_delay=0.0)
    with caplog.at_level(logging.WARNING, logger="utils.redis_gate"):
        with gate.slot(ORIGIN):
            pass
        assert gate.set_crawl_delay(ORIGIN, 0.5) == 0.5
    assert gate.fallback.delay_for(ORIGIN) == 0.5
    assert any("Redis unreachable" in r.getMessage() and "per-process gate" in r.getMessage()
               for r in caplog.records), caplog.text


def test_workers_choose_the_gate_by_broker() -> None:
    config = {"FETCH_PER_ORIGIN": 1, "FETCH_DELAY_SECONDS": 1.0, "FETCH_MAX_CRAWL_DELAY": 10.0,
              "FETCH_TOTAL_TIMEOUT": 20.0, "CELERY_TASK_DEFAULT_QUEUE": "celery"}
    assert isinstance(politeness_gate({**config, "CELERY_BROKER_URL": "filesystem://"}),
                      Politeness)
    gate = politeness_gate({**config, "CELERY_BROKER_URL": "redis://127.0.0.1:1/0"})
    assert isinstance(gate, RedisGate) and gate.prefix == "rivalscope:gate:celery:"


@needs_redis
def test_two_hostnames_on_one_server_share_the_gate(prefix):
    """Keyed by the address the request connects to: while one hostname holds the only
    slot, another hostname on the same address waits; one on another address does not."""
    import threading

    gate = RedisGate(REDIS_URL, prefix=prefix, default_delay=0.0, concurrency=1)
    order: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def first() -> None:
        with gate.slot("http://a.example.test/", "192.0.2.7"):
            order.append("a in")
            holding.set()
            release.wait(10)
            order.append("a out")

    def second(host: str, address: str) -> None:
        with gate.slot(f"http://{host}/", address):
            order.append(f"{host} in")

    holder = threading.Thread(target=first)
    holder.start()
    assert holding.wait(10)
    other = threading.Thread(target=second, args=("c.example.test", "192.0.2.8"))
    other.start()
    other.join(10)  # another server: not held back
    same = threading.Thread(target=second, args=("b.example.test", "192.0.2.7"))
    same.start()
    same.join(0.5)
    assert same.is_alive(), "a second hostname on the same address did not wait"
    release.set()
    holder.join(10)
    same.join(10)
    assert order == ["a in", "c.example.test in", "a out", "b.example.test in"]
