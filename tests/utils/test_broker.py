"""The embedded broker (utils.broker): atomic messages, quarantine, no messages for dead
consumers, pruning, and no "No hostname was supplied" warning. Real processes share a real
folder; nothing is mocked."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Queue
from kombu.transport import filesystem as stock

from utils import broker

PRODUCERS, CONSUMERS, PER_PRODUCER = 4, 3, 150


def connection(options: dict) -> Connection:
    return Connection("filesystem://", transport=broker.TRANSPORT, transport_options=options)


def produce(options: dict, producer: int, count: int) -> None:
    with connection(options) as conn:
        queue = Queue("jobs", Exchange("jobs", type="direct"), routing_key="jobs")
        with conn.Producer() as publisher:
            for n in range(count):
                publisher.publish({"id": f"{producer}-{n}"}, exchange=queue.exchange,
                                  routing_key="jobs", declare=[queue], serializer="json")


def consume(options: dict, results: multiprocessing.Queue, idle: float) -> None:
    seen: list[str] = []
    with connection(options) as conn:
        queue = Queue("jobs", Exchange("jobs", type="direct"), routing_key="jobs")
        with conn.SimpleQueue(queue) as simple:
            last = time.monotonic()
            while time.monotonic() - last < idle:
                try:
                    message = simple.get(timeout=0.2)
                except simple.Empty:
                    continue
                seen.append(message.payload["id"])
                message.ack()
                last = time.monotonic()
    results.put(seen)


def poison(folder: str, count: int) -> None:
    """Drop empty, half-written and garbage files under message names, as a crashed or
    non-atomic writer would."""
    for n in range(count):
        name = f"{int(time.monotonic() * 1000)}_poison{n}.jobs.msg"
        Path(folder, name).write_bytes([b"", b'{"body": "trunc', b"\xff\xfe garbage"][n % 3])
        time.sleep(0.01)


@pytest.fixture
def options(tmp_path: Path) -> dict:
    return broker.folder_options(tmp_path / "broker")


def test_concurrent_producers_and_consumers_lose_nothing_and_survive_poison(options):
    """4 producer and 3 consumer processes, plus a writer of poison files: every message is
    consumed exactly once, no consumer dies, every poison file ends in quarantine."""
    ctx = multiprocessing.get_context("fork")
    results: multiprocessing.Queue = ctx.Queue()
    consumers = [ctx.Process(target=consume, args=(options, results, 3.0))
                 for _ in range(CONSUMERS)]
    for process in consumers:
        process.start()
    producers = [ctx.Process(target=produce, args=(options, p, PER_PRODUCER))
                 for p in range(PRODUCERS)]
    producers.append(ctx.Process(target=poison, args=(options["data_folder_in"], 30)))
    for process in producers:
        process.start()
    for process in producers:
        process.join(60)
        assert process.exitcode == 0
    seen = [results.get(timeout=60) for _ in consumers]
    for process in consumers:
        process.join(30)
        assert process.exitcode == 0, "a consumer died"
    consumed = [item for chunk in seen for item in chunk]
    sent = {f"{p}-{n}" for p in range(PRODUCERS) for n in range(PER_PRODUCER)}
    assert len(consumed) == len(sent) == PRODUCERS * PER_PRODUCER
    assert set(consumed) == sent
    assert len(os.listdir(options["quarantine_folder"])) == 30
    leftovers = [n for n in os.listdir(options["data_folder_in"]) if not n.startswith(".")]
    assert leftovers == []
    assert os.listdir(options["claimed_folder"]) == []


def test_stock_transport_dies_on_an_empty_file_and_ours_quarantines_it(options, caplog):
    """The upstream failure (celery/kombu#1551) reproduced, and handled."""
    folder = options["data_folder_in"]
    Path(folder, "0_first.jobs.msg").write_bytes(b"")
    with Connection("filesystem://", transport_options=options) as conn:
        channel = conn.default_channel
        assert type(channel) is stock.Channel
        with pytest.raises(ValueError):
            channel._get("jobs")
    Path(folder, "0_empty.jobs.msg").write_bytes(b"")
    produce(options, 0, 1)
    with caplog.at_level(logging.WARNING, logger="utils.broker"):
        with connection(options) as conn:
            payload = conn.default_channel._get("jobs")
    assert payload["body"]
    assert "quarantined unreadable message" in caplog.text
    assert any(name.endswith("0_empty.jobs.msg")
               for name in os.listdir(options["quarantine_folder"]))


def test_a_message_is_never_visible_half_written(options):
    """Writes go through a hidden temp file and a rename: the final name only ever holds a
    whole message."""
    big = {"body": "x" * 2_000_000}
    broker.write_atomic(Path(options["data_folder_in"]) / "1_big.jobs.msg",
                        json.dumps(big).encode())
    names = os.listdir(options["data_folder_in"])
    assert names == ["1_big.jobs.msg"]
    with connection(options) as conn:
        assert conn.default_channel._get("jobs")["body"] == big["body"]


def hold_consumer(options: dict, queue: str, ready: multiprocessing.Event) -> None:
    with connection(options) as conn:
        channel = conn.channel()
        channel._hold_consumer_lock(queue)
        ready.set()
        time.sleep(120)


def event_files(options: dict, queue: str) -> int:
    return sum(1 for name in os.listdir(options["data_folder_in"])
               if name.partition(".")[2] == f"{queue}.msg")


def test_events_are_not_kept_for_a_queue_nobody_consumes(options):
    """celeryev messages reach a queue while its consumer lives; after it is killed -9,
    none are written for it, and prune removes its binding and leftovers."""
    ctx = multiprocessing.get_context("fork")
    exchange = Exchange("celeryev", type="topic")
    live = Queue("celeryev.flower-1", exchange, routing_key="#")
    ready = ctx.Event()
    holder = ctx.Process(target=hold_consumer, args=(options, live.name, ready))
    holder.start()
    try:
        assert ready.wait(30)
        with connection(options) as conn:
            live.bind(conn.default_channel).declare()
            with conn.Producer() as producer:
                for _ in range(5):
                    producer.publish({"type": "worker-heartbeat"}, exchange=exchange,
                                     routing_key="worker.heartbeat")
        assert event_files(options, live.name) == 5
        assert broker.consumer_alive(options["control_folder"], live.name)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(10)
    assert not broker.consumer_alive(options["control_folder"], live.name)
    with connection(options) as conn:
        with conn.Producer() as producer:
            for _ in range(20):
                producer.publish({"type": "worker-heartbeat"}, exchange=exchange,
                                 routing_key="worker.heartbeat")
    assert event_files(options, live.name) == 5  # nothing new for the dead consumer
    done = broker.prune(options, now=time.time() + 3600)
    assert done["unbound"] == 1 and done["orphaned"] == 5
    assert event_files(options, live.name) == 0
    table = json.loads(Path(options["control_folder"], "celeryev.exchange").read_text())
    assert table == []


def test_task_messages_are_kept_while_no_worker_runs(options):
    """The task queue is not ephemeral: messages wait for a worker that is not there yet."""
    produce(options, 0, 3)
    assert broker.prune(options, now=time.time() + 3600)["orphaned"] == 0
    assert len([n for n in os.listdir(options["data_folder_in"]) if n.endswith(".jobs.msg")]) == 3


def test_prune_drops_expired_and_temp_files_and_restores_stale_claims(options):
    queue_folder = Path(options["data_folder_in"])
    expired = {"body": "{}", "headers": {}, "properties": {"expiration": "1000"}}
    fresh = {"body": "{}", "headers": {}, "properties": {}}
    task_expired = {"body": "{}", "headers": {"expires": "2000-01-01T00:00:00+00:00"},
                    "properties": {}}
    broker.write_atomic(queue_folder / "1_a.jobs.msg", json.dumps(expired).encode())
    broker.write_atomic(queue_folder / "2_b.jobs.msg", json.dumps(fresh).encode())
    broker.write_atomic(queue_folder / "3_c.jobs.msg", json.dumps(task_expired).encode())
    (queue_folder / ".tmp-orphan").write_bytes(b"half")
    Path(options["claimed_folder"], "4_d.jobs.msg").write_bytes(json.dumps(fresh).encode())
    done = broker.prune(options, now=time.time() + 120)
    assert done["expired"] == 2 and done["temp_files"] == 1 and done["restored"] == 1
    assert sorted(os.listdir(queue_folder)) == ["2_b.jobs.msg", "4_d.jobs.msg"]


def test_an_unreadable_exchange_table_is_not_fatal(options, caplog):
    Path(options["control_folder"], "celeryev.exchange").write_bytes(b"")
    with connection(options) as conn:
        with caplog.at_level(logging.WARNING, logger="utils.broker"):
            assert conn.default_channel.get_table("celeryev") == []
            queue = Queue("celeryev.x", Exchange("celeryev", type="topic"), routing_key="#")
            queue.bind(conn.default_channel).declare()
    table = json.loads(Path(options["control_folder"], "celeryev.exchange").read_text())
    assert [row[2] for row in table] == ["celeryev.x"]


def test_no_hostname_warning_from_the_celery_app(app, caplog):
    """issue 10 §6: kombu no longer logs "No hostname was supplied"."""
    celery = app.extensions["celery"]
    with caplog.at_level(logging.WARNING):
        with celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1)
            conn.info()
            conn.default_channel  # noqa: B018
            if str(celery.conf.broker_url).startswith("filesystem"):
                assert type(conn.default_channel) is broker.Channel
        # What a worker does for `celery inspect conf` (Flower asks it): a stock Connection
        # on the URL alone.
        celery.conf.table(with_defaults=False, censored=True)
    assert "No hostname was supplied" not in caplog.text


def test_the_cleanup_task_prunes_the_embedded_broker(app, committed, backend):
    """maintenance.cleanup_stale_db_sessions runs ``prune`` on the app's own broker."""
    from tests.ops.test_cleanup import run_cleanup

    celery = app.extensions["celery"]
    if not str(celery.conf.broker_url).startswith("filesystem"):
        assert run_cleanup(app)["broker"] is None  # Redis: nothing to prune on disk
        return
    options = celery.conf.broker_transport_options
    stale = Path(options["data_folder_in"]) / ".tmp-left-by-a-crash"
    stale.write_bytes(b"half")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    result = run_cleanup(app)
    assert result["broker"]["temp_files"] == 1
    assert not stale.exists()
