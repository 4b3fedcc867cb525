"""Drills on the embedded defaults, started the way the README starts the app (`make run`:
supervisor over the Procfile, SQLite, filesystem broker): concurrent producers while beat
runs, kill -9 of worker, beat and a web worker, and a 0-byte beat schedule.

They need nothing but this repository's virtualenv, so they run on every machine; on the
PostgreSQL + Redis leg they are not repeated (they never use those services)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from tests.conftest import BASE_PG_URL
from tests.drills.embedded import EmbeddedRun
from tests.sites import LocalSite, SiteSpec

pytestmark = pytest.mark.skipif(
    bool(BASE_PG_URL), reason="embedded-defaults drill: runs on the SQLite leg of .ci/run")

PRODUCERS, BATCHES, SITES = 4, 300, 8
FINISHED = ("completed", "partial", "failed", "cancelled")


def wait_until(predicate, timeout: float, what: str, run: EmbeddedRun) -> float:
    """Poll until true; returns the seconds it took; fails with the run's logs."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.5)
    logs = "\n".join(f"--- {name}:\n{run.log(name)[-2500:]}" for name in ("worker", "beat"))
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n"
                f"{run.output.read_text()[-2000:]}\n{logs}")


@pytest.fixture
def sites() -> Iterator[list[LocalSite]]:
    with ExitStack() as stack:
        yield [stack.enter_context(LocalSite(SiteSpec(title=f"Site {n}", pages=2)))
               for n in range(SITES)]


def run_with(**env: str) -> Iterator[EmbeddedRun]:
    run = EmbeddedRun(**env)
    try:
        yield run.start()
    finally:
        run.stop()


@pytest.fixture
def embedded() -> Iterator[EmbeddedRun]:
    """`make run` with its defaults (lease 900 s, requeue every 60 s), 8 worker threads
    (`WORKER_CONCURRENCY`, the Procfile's knob; 4 by default) to keep the drill short: the
    300 batches finish in about 50 s instead of 130 s."""
    yield from run_with(WORKER_CONCURRENCY=os.environ.get("DRILL_WORKER_CONCURRENCY", "8"))


@pytest.fixture(scope="module")
def embedded_fast_recovery() -> Iterator[EmbeddedRun]:
    """`make run` with a short site lease, so a site whose worker was killed is taken over
    within the drill's time (the recovery path is the same, only sooner)."""
    yield from run_with(SITE_LEASE_SECONDS="12", REQUEUE_INTERVAL_SECONDS="5")


def submit(run: EmbeddedRun, headers: dict, urls: list[str], name: str,
           max_pages: int = 1) -> int:
    for _attempt in range(5):
        response = httpx.post(f"{run.base}/api/v1/batches", headers=headers, timeout=60,
                              json={"name": name, "urls": urls, "max_pages": max_pages})
        if response.status_code != 503:
            break
        time.sleep(float(response.headers.get("Retry-After", "1")))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def batch_states(run: EmbeddedRun) -> dict[int, str]:
    return dict(run.rows("SELECT id, status FROM batches"))


def test_four_producers_300_batches_while_beat_runs(embedded, sites):
    """Every batch ends, the worker never dies, no task message is lost, and a message
    taken twice never gives a second outcome (no page stored twice, each site once)."""
    run = embedded
    worker_pid, beat_pid = run.pid("worker"), run.pid("beat")
    headers = run.token()
    ids: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def producer(number: int) -> None:
        try:
            for n in range(number, BATCHES, PRODUCERS):
                urls = [sites[(2 * n) % SITES].url, sites[(2 * n + 1) % SITES].url]
                batch_id = submit(run, headers, urls, f"load {n}")
                with lock:
                    ids.append(batch_id)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(repr(exc))

    started = time.monotonic()
    threads = [threading.Thread(target=producer, args=(p,)) for p in range(PRODUCERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert not errors, errors[:3]
    assert len(ids) == BATCHES
    submitted = time.monotonic() - started

    def all_finished() -> bool:
        states = batch_states(run)
        return len(states) == BATCHES and all(s in FINISHED for s in states.values())

    wait_until(all_finished, 240, "every batch to finish", run)
    elapsed = time.monotonic() - started
    states = batch_states(run)
    assert set(states.values()) == {"completed"}, {s for s in states.values()}
    sites_done = run.rows("SELECT status, count(*) FROM sites GROUP BY status")
    assert sites_done == [("completed", 2 * BATCHES)], sites_done
    assert run.rows("SELECT site_id, url FROM pages GROUP BY site_id, url "
                    "HAVING count(*) > 1") == []
    assert run.scalar("SELECT count(*) FROM pages") == 2 * BATCHES
    # The worker (and beat) never died: same pids, no restart recorded.
    assert run.pid("worker") == worker_pid and run.pid("beat") == beat_pid
    assert run.scalar("SELECT count(*) FROM system_logs WHERE logger = 'rivalscope.process'") \
        == 0
    # Broker: every task message sent was taken, none taken twice; nothing quarantined.
    def drained() -> bool:  # beat keeps sending: wait for a moment with nothing in flight
        put, got = run.trace()
        return run.waiting() == 0 and set(put) <= set(got)

    wait_until(drained, 60, "every task message sent to be taken", run)
    put, got = run.trace()
    lost = set(put) - set(got)
    twice = {task_id: n for task_id, n in got.items() if n > 1}
    assert not lost and not twice, (len(lost), twice)
    assert set(got) <= set(put)
    assert os.listdir(run.broker / "quarantine") == []
    assert "Unrecoverable error" not in run.log("worker")
    print(f"\nbroker drill: {BATCHES} batches by {PRODUCERS} producers submitted in "
          f"{submitted:.1f} s, all finished in {elapsed:.1f} s; task messages sent "
          f"{sum(put.values())}, consumed {sum(got.values())}, lost {len(lost)}, "
          f"taken twice {len(twice)}")


def test_kill_worker_beat_and_a_web_worker_then_recover(embedded_fast_recovery):
    """kill -9 the worker, then beat, then one gunicorn worker: within 60 s /health/ready
    answers 200, the batch submitted before the kill completes, supervisor restarted each
    process and /admin lists the restarts."""
    run = embedded_fast_recovery
    with ExitStack() as stack:
        slow = [stack.enter_context(LocalSite(SiteSpec(title=f"Slow {n}", pages=6,
                                                       delay=0.4))) for n in range(2)]
        headers = run.token()
        batch_id = submit(run, headers, [site.url for site in slow], "before the kill",
                          max_pages=7)
        wait_until(lambda: run.scalar("SELECT count(*) FROM pages") >= 1, 60,
                   "the batch to be crawling", run)
        old = {name: run.pid(name) for name in ("worker", "beat", "web")}
        os.kill(old["worker"], signal.SIGKILL)
        os.kill(old["beat"], signal.SIGKILL)
        web_children = [int(pid) for pid in
                        open(f"/proc/{old['web']}/task/{old['web']}/children").read().split()]
        assert web_children, "gunicorn has no worker"
        os.kill(web_children[0], signal.SIGKILL)
        killed_at = time.monotonic()
        ready_after = wait_until(run.ready, 60, "/health/ready 200 after the kills", run)
        done_after = wait_until(
            lambda: batch_states(run).get(batch_id) in FINISHED, 120,
            "the batch submitted before the kill to finish", run)
        assert batch_states(run)[batch_id] == "completed", run.rows(
            "SELECT id, status, error FROM sites")
        wait_until(lambda: run.pid("worker") not in (None, old["worker"])
                   and run.pid("beat") not in (None, old["beat"]), 30,
                   "supervisor to restart worker and beat", run)
    events = [row[0] for row in run.rows(
        "SELECT message FROM system_logs WHERE logger = 'rivalscope.process' ORDER BY id")]
    assert f"worker (pid {old['worker']}) died unexpectedly and was restarted" in events
    assert f"beat (pid {old['beat']}) died unexpectedly and was restarted" in events
    page = httpx.get(f"{run.base}/admin", headers=headers, timeout=30)
    assert page.status_code == 200
    assert f"worker (pid {old['worker']}) died unexpectedly" in page.text
    assert run.pid("web") == old["web"]  # gunicorn replaced its own worker
    print(f"\nkill drill: /health/ready 200 after {ready_after:.1f} s; the batch completed "
          f"{done_after + ready_after:.1f} s after the kills "
          f"({time.monotonic() - killed_at:.1f} s in all)")


def test_beat_starts_on_a_truncated_schedule(embedded_fast_recovery):
    """Truncate beat's schedule to 0 bytes and restart beat: it runs, rebuilds the schedule
    and keeps sending (the requeue task is due every 5 s here)."""
    run = embedded_fast_recovery
    wait_until(lambda: bool(run.schedule_entries()), 30, "beat to save its schedule", run)
    assert "stopped" in run.ctl("stop", "beat")
    (run.instance / "celerybeat-schedule").write_bytes(b"")
    assert (run.instance / "celerybeat-schedule").stat().st_size == 0
    out = run.ctl("start", "beat")
    assert "started" in out, out + run.log("beat")[-2000:]
    wait_until(lambda: bool(run.schedule_entries()), 30, "beat to rebuild its schedule", run)
    put_before = sum(run.trace()[0].values())
    wait_until(lambda: sum(run.trace()[0].values()) > put_before, 30,
               "beat to send a task after the restart", run)
    assert run.status()["beat"][0] == "RUNNING"
    assert "starting with a fresh one" in run.log("beat")


def dead_event_files(run: EmbeddedRun) -> int:
    """Event message files waiting for a queue no live process consumes."""
    from utils.broker import consumer_alive

    control = run.broker / "control"
    return sum(1 for name in os.listdir(run.broker / "queue")
               if name.partition(".")[2].startswith("celeryev.")
               and not consumer_alive(control, name.partition(".")[2].removesuffix(".msg")))


def test_flower_restarts_do_not_grow_the_broker_folder(embedded_fast_recovery):
    """issue 14: every Flower restart leaves a dead celeryev queue; nothing more is written
    for it, and the cleanup's prune removes its binding and leftovers."""
    from utils.broker import consumer_alive, folder_options, folder_usage, prune

    run = embedded_fast_recovery
    options = folder_options(run.broker)
    before = folder_usage(options)
    for _ in range(5):
        assert "started" in run.ctl("restart", "flower")
        time.sleep(1)
    settled = dead_event_files(run)
    time.sleep(10)  # the worker sends a heartbeat event every 2 s
    assert dead_event_files(run) == settled, "events kept for a dead Flower"
    after = folder_usage(options)
    done = prune(options, stale_seconds=0)
    table = json.loads((run.broker / "control" / "celeryev.exchange").read_text())
    assert all(consumer_alive(run.broker / "control", row[2]) for row in table), table
    assert dead_event_files(run) == 0
    assert done["unbound"] >= 5 and done["lock_files"] >= 5
    pruned = folder_usage(options)
    assert pruned["files"] <= before["files"] + 2, (before, pruned)
    print(f"\nflower restarts: broker folder {before} before, {after} after 5 restarts, "
          f"{pruned} after prune ({done})")
