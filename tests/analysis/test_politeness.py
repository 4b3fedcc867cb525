"""Politeness: delays and concurrency per (scheme, host, port), and one gate for every
hostname of one server address."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from analysis.fetcher import FetchConfig, Fetcher
from analysis.guarded_network import GuardedBackend
from analysis.politeness import Politeness
from tests.analysis.conftest import LOOPBACK_V4, html, make_fetcher


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def test_delay_is_applied_between_requests_to_one_origin():
    clock = FakeClock()
    gate = Politeness(default_delay=2.0, clock=clock, sleep=clock.sleep)
    with gate.slot("http://a.example/1"):
        pass
    with gate.slot("http://a.example/2"):
        pass
    with gate.slot("http://a.example/3"):
        clock.now += 0.5  # a slow request: the delay counts from its end
    with gate.slot("http://a.example/4"):
        pass
    assert clock.sleeps == [2.0, 2.0, 2.0]


def test_different_origins_do_not_wait_for_each_other():
    clock = FakeClock()
    gate = Politeness(default_delay=5.0, clock=clock, sleep=clock.sleep)
    for url in ("http://127.0.0.1:8001/", "http://127.0.0.1:8002/", "https://127.0.0.1:8001/",
                "http://localhost:8001/"):
        with gate.slot(url):
            pass
    assert clock.sleeps == []
    assert len(gate.origins()) == 4


def test_default_port_is_the_same_origin_as_explicit_port():
    clock = FakeClock()
    gate = Politeness(default_delay=1.0, clock=clock, sleep=clock.sleep)
    with gate.slot("https://a.example/"):
        pass
    with gate.slot("https://A.example:443/x"):
        pass
    assert clock.sleeps == [1.0]


def test_crawl_delay_counts_from_the_request_that_announced_it():
    clock = FakeClock()
    gate = Politeness(default_delay=0.0, clock=clock, sleep=clock.sleep)
    with gate.slot("http://a.example/robots.txt"):
        clock.now += 0.2
    gate.set_crawl_delay("http://a.example/", 3)
    with gate.slot("http://a.example/"):
        pass
    assert clock.sleeps == [3.0]


def test_crawl_delay_is_capped_and_never_below_default():
    gate = Politeness(default_delay=0.5, max_delay=10.0)
    assert gate.set_crawl_delay("http://a.example/", 3) == 3.0
    assert gate.delay_for("http://a.example/page") == 3.0
    assert gate.set_crawl_delay("http://a.example/", 3600) == 10.0
    assert gate.set_crawl_delay("http://a.example/", 0.1) == 0.5
    assert gate.set_crawl_delay("http://a.example/", None) == 0.5
    assert gate.delay_for("http://b.example/") == 0.5


def test_same_origin_is_serialised_across_threads():
    gate = Politeness(default_delay=0.0)
    inside = threading.Event()
    release = threading.Event()
    second_in = threading.Event()

    def holder():
        with gate.slot("http://127.0.0.1:8001/a"):
            inside.set()
            release.wait(10)

    def contender():
        with gate.slot("http://127.0.0.1:8001/b"):
            second_in.set()

    t1 = threading.Thread(target=holder)
    t1.start()
    assert inside.wait(5)
    t2 = threading.Thread(target=contender)
    t2.start()
    assert not second_in.wait(0.3)  # blocked while the first request holds the origin
    release.set()
    assert second_in.wait(5)
    t1.join(5)
    t2.join(5)


def test_two_ports_on_one_host_are_not_serialised_together():
    gate = Politeness(default_delay=0.0)
    inside = threading.Event()
    release = threading.Event()
    other_in = threading.Event()

    def holder():
        with gate.slot("http://127.0.0.1:8001/a"):
            inside.set()
            release.wait(10)

    def other_port():
        with gate.slot("http://127.0.0.1:8002/a"):
            other_in.set()

    t1 = threading.Thread(target=holder)
    t1.start()
    assert inside.wait(5)
    t2 = threading.Thread(target=other_port)
    t2.start()
    try:
        assert other_in.wait(5)  # entered while port 8001 is still held
    finally:
        release.set()
        t1.join(5)
        t2.join(5)


def test_concurrency_allows_that_many_requests_per_origin():
    gate = Politeness(concurrency=2, default_delay=0.0)
    entered = threading.Semaphore(0)
    release = threading.Event()
    count = 0
    lock = threading.Lock()

    def worker():
        nonlocal count
        with gate.slot("http://a.example/"):
            with lock:
                count += 1
            entered.release()
            release.wait(10)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    assert entered.acquire(timeout=5) and entered.acquire(timeout=5)
    assert not entered.acquire(timeout=0.3)
    assert count == 2
    release.set()
    assert entered.acquire(timeout=5)
    for t in threads:
        t.join(5)


def test_real_delay_between_threads_on_one_origin():
    gate = Politeness(default_delay=0.2)
    starts: list[float] = []
    lock = threading.Lock()

    def worker():
        with gate.slot("http://127.0.0.1:9/"):
            with lock:
                starts.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    starts.sort()
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert len(gaps) == 3 and all(gap >= 0.19 for gap in gaps)


def test_idle_origins_are_forgotten():
    clock = FakeClock()
    gate = Politeness(default_delay=0.0, idle_expiry=60, clock=clock, sleep=clock.sleep)
    with gate.slot("http://old.example/"):
        pass
    clock.now += 120
    with gate.slot("http://new.example/"):
        pass
    assert gate.origins() == [("http", "new.example", 80)]


def test_invalid_concurrency_is_rejected():
    with pytest.raises(ValueError):
        Politeness(concurrency=0)


def test_fetching_one_port_while_another_port_is_held(servers):
    """Real servers: a held slot on one port does not stop a fetch from the other port."""
    first = servers.serve({"/": html("First")})
    second = servers.serve({"/": html("Second")})
    gate = Politeness(default_delay=0.0)
    results = []
    with make_fetcher() as fetcher, gate.slot(first.url("/")):
        worker = threading.Thread(
            target=lambda: results.append(fetcher.fetch(second.url("/"), politeness=gate))
        )
        worker.start()
        worker.join(10)
        assert results and results[0].error is None  # done while the first origin is held
        blocked = threading.Thread(
            target=lambda: results.append(fetcher.fetch(first.url("/"), politeness=gate))
        )
        blocked.start()
        blocked.join(0.3)
        assert blocked.is_alive()  # the same origin waits for the held slot
    blocked.join(10)
    assert len(results) == 2 and results[1].error is None
    assert first.count("/") == 1 and second.count("/") == 1


# --- one gate per server address -----------------------------------------------------------


def test_two_hostnames_on_one_address_share_the_gate():
    clock = FakeClock()
    gate = Politeness(default_delay=2.0, clock=clock, sleep=clock.sleep)
    with gate.slot("http://a.example/", "10.0.0.7"):
        pass
    with gate.slot("http://b.example/", "10.0.0.7"):  # another name, the same server
        pass
    with gate.slot("http://c.example/", "10.0.0.8"):  # another server: no wait
        pass
    assert clock.sleeps == [2.0]
    assert sorted(gate.origins()) == [("http", "10.0.0.7", 80), ("http", "10.0.0.8", 80)]


def test_a_crawl_delay_applies_to_the_shared_gate_and_only_to_it():
    clock = FakeClock()
    gate = Politeness(default_delay=0.5, max_delay=10, clock=clock, sleep=clock.sleep)
    with gate.slot("http://a.example/robots.txt", "10.0.0.7"):
        pass
    assert gate.set_crawl_delay("http://a.example/", 3) == 3
    with gate.slot("http://b.example/", "10.0.0.7"):
        pass
    assert gate.delay_for("http://b.example/") == 3
    with gate.slot("http://b.example/x", "10.0.0.9"):  # b moved: a's delay stays behind
        pass
    assert gate.delay_for("http://b.example/") == 0.5
    assert clock.sleeps == [3.0]


def _blocked_while_held(gate, held_url, address, fetch) -> None:
    results = []
    with gate.slot(held_url, address):
        thread = threading.Thread(target=lambda: results.append(fetch()))
        thread.start()
        thread.join(0.5)
        assert thread.is_alive()  # waits: the server's gate is held under another name
    thread.join(10)
    assert results and results[0].error is None, results


def test_localhost_and_127_0_0_1_share_one_gate(servers):
    site = servers.serve({"/": html("One server")})
    gate = Politeness(default_delay=0.0)
    port = site.port
    with make_fetcher() as fetcher:
        _blocked_while_held(gate, f"http://127.0.0.1:{port}/", "127.0.0.1",
                            lambda: fetcher.fetch(f"http://localhost:{port}/", politeness=gate))
    assert site.count("/") == 1


def test_names_from_the_resolver_hook_share_one_gate(servers):
    site = servers.serve({"/": html("One server")})
    port = site.port

    def resolver(host, port, type=0):  # noqa: A002 - getaddrinfo's keyword
        assert host in ("alpha.test", "beta.test")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    fetcher = Fetcher(FetchConfig(allow_networks=LOOPBACK_V4, total_timeout=5.0),
                      backend=GuardedBackend(LOOPBACK_V4, resolver=resolver))
    gate = Politeness(default_delay=0.0)
    with fetcher:
        first = fetcher.fetch(f"http://alpha.test:{port}/", politeness=gate)
        assert first.error is None
        _blocked_while_held(gate, f"http://alpha.test:{port}/", "127.0.0.1",
                            lambda: fetcher.fetch(f"http://beta.test:{port}/", politeness=gate))
    assert gate.origins() == [("http", "127.0.0.1", port)]
    assert site.count("/") == 2
