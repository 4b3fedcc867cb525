"""The scale-out drill, run by tests/drills/test_scale_out.py inside its own network
namespace (never collected on its own: the file name does not start with ``test_``).

One lab (tests/drills/netlab.py) for the module: PostgreSQL in ``db``, Redis in ``redis``,
gunicorn in ``web``, a threads worker in ``worker-a`` and one in ``worker-b``, the sites in
``sites`` (``FETCH_ALLOW_NETWORKS`` = the sites address only).

1. two hosts share a batch of 20 sites x 30 pages, every page stored once;
2. worker-a cut off mid-batch: worker-b takes over the expired leases, the batch completes,
   no page twice; once the link is back worker-a's late writes are refused and logged;
   PostgreSQL unreachable (Redis reachable) for 20 s: the batch still completes;
3. politeness is global: two users' batches with the same competitor on the two hosts keep
   the configured gap between its requests;
4. beat runs once: two beats, one active; kill it, the other takes over.

"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.drills import netlab
from tests.drills.conftest import assert_batch_complete_without_duplicates, scalar

INSIDE = os.environ.get(netlab.INSIDE_ENV) == "1"
LEASE_SECONDS = 6
SITES, PAGES = 20, 30
GAP = 0.3  # FETCH_DELAY_SECONDS in the politeness test
FIGURES: dict[str, float | str] = {}


def _wait(predicate, timeout: float, what: str, *procs) -> None:
    try:
        netlab.Lab.wait(predicate, timeout, what, *procs)
    except (TimeoutError, RuntimeError) as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="module")
def lab():
    if not INSIDE:
        pytest.skip("inner test of the scale-out drill")
    lab = netlab.Lab()
    try:
        lab.build()
        lab.setup_app()
        lab.site_urls = lab.start_sites(SITES + 1, PAGES, 0.02)
        yield lab
    finally:
        output = Path(os.environ.get("TEST_OUTPUT_DIR", netlab.ROOT / "test-output"))
        output.mkdir(parents=True, exist_ok=True)
        (output / "scale_out_figures.json").write_text(json.dumps(FIGURES, indent=2))
        print(f"\nFIGURES {json.dumps(FIGURES)}")
        lab.destroy()


@pytest.fixture(scope="module")
def workers(lab):
    """One threads worker per worker host, short leases (the pipeline tests)."""
    procs = [lab.start_worker(host, concurrency=4, SITE_LEASE_SECONDS=str(LEASE_SECONDS))
             for host in ("worker-a", "worker-b")]
    yield procs
    for proc in procs:
        proc.stop()


def _status(engine, batch_id: int) -> str | None:
    return scalar(engine, "SELECT status FROM batches WHERE id = :id", id=batch_id)


def _wait_batches(lab, engine, ids: list[int], timeout: float, *procs) -> None:
    """Wait until the batches finish, sending the lease requeue every 5 s as beat does
    (every minute in production): it also restarts a pending site whose doorbell message
    found no site to lease while other workers raced for the same ones."""
    last = [time.monotonic()]

    def finished() -> bool:
        if time.monotonic() - last[0] >= 5:
            last[0] = time.monotonic()
            lab.send_task("pipeline.requeue_stalled_sites")
        return all(_status(engine, i) in ("completed", "failed") for i in ids)

    _wait(finished, timeout, f"batches {ids}", *procs)


def _hosts_of_sites(lab, batch_id: int, workers) -> dict[str, int]:
    """How many of the batch's sites each worker host finished (by its lease owner)."""
    engine = lab.engine()
    with engine.connect() as connection:
        import sqlalchemy as sa

        owners = connection.execute(sa.text("SELECT lease_owner FROM sites WHERE batch_id = :id"),
                                    {"id": batch_id}).scalars().all()
    engine.dispose()
    counts = {}
    for proc in workers:
        ids = netlab.received_task_ids(proc)
        counts[proc.name] = sum(1 for owner in owners if owner in ids)
    return counts


def test_two_hosts_share_a_batch(lab, workers) -> None:
    headers = lab.token(*netlab.USERS[0])
    started = time.monotonic()
    batch_id = lab.submit(headers, lab.site_urls[:SITES], PAGES, "two hosts")
    engine = lab.engine()
    _wait_batches(lab, engine, [batch_id], 120, *workers)
    FIGURES["batch_20x30_two_hosts_seconds"] = round(time.monotonic() - started, 1)
    assert_batch_complete_without_duplicates(engine, batch_id, PAGES)
    engine.dispose()
    counts = _hosts_of_sites(lab, batch_id, workers)
    FIGURES["sites_per_host"] = json.dumps(counts)
    assert all(count > 0 for count in counts.values()), counts  # both hosts analysed sites
    assert sum(counts.values()) == SITES, counts


def _leased_by(lab, proc, batch_id: int) -> set[int]:
    import sqlalchemy as sa

    ids = netlab.received_task_ids(proc)
    engine = lab.engine()
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text(
                "SELECT id, lease_owner FROM sites WHERE batch_id = :id AND status = 'running'"),
                {"id": batch_id}).all()
    finally:
        engine.dispose()
    return {site_id for site_id, owner in rows if owner in ids}


def test_a_host_cut_off_mid_batch_costs_nothing(lab, workers) -> None:
    worker_a, worker_b = workers
    headers = lab.token(*netlab.USERS[0])
    # 8 sites, so no backlog of doorbells queues ahead of the requeue message (it shares
    # the queue with analyze_site, FIFO: behind a long backlog it would wait its turn).
    batch_id = lab.submit(headers, lab.site_urls[:8], PAGES, "cut off")
    engine = lab.engine()
    held: set[int] = set()

    def worker_a_holds_sites() -> bool:
        held.update(_leased_by(lab, worker_a, batch_id))
        return bool(held)

    _wait(worker_a_holds_sites, 60, "worker-a to hold sites", *workers)
    held = _leased_by(lab, worker_a, batch_id) or held
    lab.cut("worker-a")
    cut_at = time.monotonic()
    try:
        time.sleep(LEASE_SECONDS + 1)

        def taken_over() -> bool:
            lab.send_task("pipeline.requeue_stalled_sites")  # what beat sends every minute
            time.sleep(0.5)
            return not (_leased_by(lab, worker_a, batch_id) & held)

        _wait(taken_over, 120, "worker-b to take over worker-a's sites", worker_b)
        FIGURES["cut_takeover_seconds"] = round(time.monotonic() - cut_at, 1)
        time.sleep(2)
    finally:
        lab.mend("worker-a")
    _wait_batches(lab, engine, [batch_id], 150, *workers)
    assert_batch_complete_without_duplicates(engine, batch_id, PAGES)
    engine.dispose()
    # The sites worker-a held were finished by another worker (worker-b's messages).
    assert held and not (_leased_by(lab, worker_a, batch_id) & held)
    _wait(lambda: "lease lost" in worker_a.output(), 60,
          "worker-a to log its refused late write", worker_a)


def test_postgres_unreachable_for_20_seconds_with_redis_reachable(lab, workers) -> None:
    headers = lab.token(*netlab.USERS[0])
    batch_id = lab.submit(headers, lab.site_urls[:SITES], PAGES, "db cut off")
    engine = lab.engine()
    _wait(lambda: (scalar(engine, "SELECT count(*) FROM pages p JOIN sites s ON "
                          "s.id = p.site_id WHERE s.batch_id = :id", id=batch_id) or 0) > 60,
          60, "pages to be stored", *workers)
    lab.cut("db")
    try:
        assert lab.redis_ping()  # Redis stays reachable
        time.sleep(20)
        assert scalar(engine, "SELECT 1") is None  # PostgreSQL really was unreachable
    finally:
        lab.mend("db")
    _wait_batches(lab, engine, [batch_id], 150, *workers)
    assert_batch_complete_without_duplicates(engine, batch_id, PAGES)
    engine.dispose()
    assert all(proc.alive() for proc in workers)


def test_politeness_is_global_across_hosts(lab, workers) -> None:
    for proc in workers:
        proc.stop()
    gated = [lab.start_worker(host, concurrency=1, name=f"gated@{host}",
                              FETCH_DELAY_SECONDS=str(GAP)) for host in ("worker-a", "worker-b")]
    try:
        competitor = lab.site_urls[SITES]  # in both users' batches
        port = int(competitor.rstrip("/").rsplit(":", 1)[1])
        ids = [lab.submit(lab.token(*user), [competitor], 12, f"politeness {n}")
               for n, user in enumerate(netlab.USERS)]
        engine = lab.engine()
        _wait_batches(lab, engine, ids, 90, *gated)
        for batch_id in ids:
            assert_batch_complete_without_duplicates(engine, batch_id, 12)
        engine.dispose()
    finally:
        for proc in gated:
            proc.stop()
    requests = lab.requests(port)
    clients = {client for _, client, _ in requests}
    assert clients == {netlab.HOSTS["worker-a"], netlab.HOSTS["worker-b"]}, clients
    gaps = [b[0] - a[0] for a, b in zip(requests, requests[1:], strict=False)]
    FIGURES["competitor_min_gap_seconds"] = round(min(gaps), 3)
    FIGURES["competitor_requests"] = len(requests)
    # Each start is at least GAP after the previous request ended (so after it started).
    assert min(gaps) >= GAP - 0.01, gaps
    alternations = sum(1 for a, b in zip(requests, requests[1:], strict=False) if a[1] != b[1])
    assert alternations >= 2  # both hosts crawled it at the same time, through one gate


def test_beat_runs_once_and_the_standby_takes_over(lab) -> None:
    beats = [lab.start_beat(host, BEAT_LOCK_SECONDS="4") for host in ("worker-a", "worker-b")]
    try:
        _wait(lambda: sum("acquired by" in b.output() for b in beats) == 1
              and sum("stands by" in b.output() for b in beats) == 1, 60,
              "one active beat and one standby", *beats)
        time.sleep(3)  # renewals: still exactly one active
        assert sum("acquired by" in b.output() for b in beats) == 1
        active = next(b for b in beats if "acquired by" in b.output())
        standby = next(b for b in beats if b is not active)
        active.kill(signal.SIGKILL)
        killed_at = time.monotonic()
        _wait(lambda: "acquired by" in standby.output(), 30, "the standby to take over",
              standby)
        FIGURES["beat_takeover_seconds_after_kill9_ttl4"] = round(
            time.monotonic() - killed_at, 1)
    finally:
        for proc in beats:
            proc.stop()
    assert "Traceback" not in standby.output()


def test_network_names_are_private_to_the_lab(lab) -> None:
    """The namespaces exist only inside the outer namespace (checked here, from inside)."""
    names = netlab.sh("ip", "netns", "list").stdout
    assert all(name in names for name in netlab.HOSTS)
