"""Concurrency within one site (``parallel`` > 1, FETCH_PER_ORIGIN): the per-origin cap
holds against a server that counts requests in flight, a robots.txt Crawl-delay still
serialises the crawl, and what is stored is what a one-at-a-time crawl stores."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest

from analysis.crawler import crawl_site
from analysis.politeness import Politeness
from tests.analysis.conftest import Reply, html, redirect

ROBOTS_404 = Reply(status=404, body="none", content_type="text/plain")


class InFlight:
    """Wraps replies: counts requests being answered at once (the peak is kept) and
    delays each answer, by path, so answers come back out of order. A request counts from
    its arrival until its answer starts to go out: counting until the last byte was written
    would overlap the client's next request, sent as soon as it has read that byte."""

    def __init__(self, delays: dict[str, float] | None = None, default: float = 0.1) -> None:
        self.delays = delays or {}
        self.default = default
        self.now = 0
        self.peak = 0
        self.spans: list[tuple[float, float]] = []
        self.lock = threading.Lock()

    def route(self, reply: Reply):
        def answer(handler) -> None:
            with self.lock:
                self.now += 1
                self.peak = max(self.peak, self.now)
            start = time.monotonic()
            try:
                time.sleep(self.delays.get(handler.path, self.default))
            finally:
                with self.lock:
                    self.now -= 1
                    self.spans.append((start, time.monotonic()))
            reply.send(handler)

        return answer


def wide_site(pages: int = 12) -> dict[str, Reply]:
    """A homepage linking to ``pages`` pages, each linking to a few others."""
    routes = {"/": html("Home", [f"/p{n}" for n in range(pages)])}
    for n in range(pages):
        routes[f"/p{n}"] = html(f"P{n}", [f"/p{(n * 7 + k) % pages}" for k in range(3)]
                                + [f"/deep{n}"])
        routes[f"/deep{n}"] = html(f"Deep {n}")
    return routes


def serve_counted(servers, routes: dict[str, Reply], counter: InFlight, robots: Reply):
    served = {path: counter.route(reply) for path, reply in routes.items()}
    served["/robots.txt"] = robots
    return servers.serve(served)


@pytest.mark.parametrize(("parallel", "per_origin", "expected_peak"),
                         [(3, 3, 3), (4, 2, 2), (1, 4, 1)])
def test_requests_in_flight_never_pass_the_per_origin_cap(servers, fetcher, parallel,
                                                          per_origin, expected_peak):
    counter = InFlight(default=0.15)
    site = serve_counted(servers, wide_site(), counter, ROBOTS_404)
    politeness = Politeness(concurrency=per_origin, default_delay=0.0)
    result = crawl_site(site.url("/"), max_pages=20, fetcher=fetcher, politeness=politeness,
                        parallel=parallel)
    assert sum(r["analysed"] for r in result.records) == 20
    # the cap holds, and with parallel > 1 the crawl does use it
    assert counter.peak == expected_peak
    assert max(Counter(site.paths()).values()) == 1  # and no page is asked for twice


def test_crawl_delay_serialises_a_parallel_crawl(servers, fetcher):
    counter = InFlight(default=0.05)
    robots = Reply(body="User-agent: *\nCrawl-delay: 0.25\n", content_type="text/plain")
    site = serve_counted(servers, wide_site(4), counter, robots)
    politeness = Politeness(concurrency=4, default_delay=0.0, max_delay=5.0)
    result = crawl_site(site.url("/"), max_pages=5, fetcher=fetcher, politeness=politeness,
                        parallel=4)
    assert result.robots["crawl_delay"] == 0.25
    assert sum(r["analysed"] for r in result.records) == 5
    assert counter.peak == 1  # one request at a time, though parallel=4 and 4 slots
    spans = sorted(counter.spans)
    gaps = [later[0] - earlier[1] for earlier, later in zip(spans, spans[1:], strict=False)]
    assert gaps and all(gap >= 0.24 for gap in gaps), gaps  # the delay between them too


def mixed_site() -> tuple[dict[str, Reply], dict[str, float]]:
    """Pages of every kind a crawl meets, answering after different delays."""
    routes: dict[str, Reply] = {
        "/": html("Home", ["/old", "/new", "/gone", "/private/x", "/file", "/about",
                           *[f"/p{n}" for n in range(10)]]),
        "/old": redirect("/new"),  # /new comes next in the level: already seen by then
        "/new": html("New", ["/n1", "/n2"]),
        "/gone": Reply(status=404, body="gone"),
        "/file": Reply(body=b"%PDF", content_type="application/pdf"),
        "/about": html("About", ["/contact", "/p3"]),
        "/contact": html("Contact", ["mailto:hi@example.com"]),
    }
    for n in range(10):
        routes[f"/p{n}"] = html(f"P{n}", [f"/p{n}/a", f"/p{n}/b", "/old"])
        routes[f"/p{n}/a"] = html(f"P{n} A")
        routes[f"/p{n}/b"] = redirect(f"/p{n}/a")
    routes["/n1"] = html("N1")
    routes["/n2"] = html("N2")
    rng = random.Random(7)
    delays = {path: rng.choice([0.0, 0.01, 0.05, 0.12]) for path in routes}
    return routes, delays


def summary(records: list[dict]) -> list[tuple]:
    return [(r["url"], r["final_url"], r["status_code"], r["analysed"], r["error"],
             (r["facts"] or {}).get("title")) for r in records]


@pytest.mark.parametrize("max_pages", [6, 13, 40])
def test_a_parallel_crawl_stores_what_a_sequential_one_stores(servers, fetcher, max_pages):
    routes, delays = mixed_site()
    robots = Reply(body="User-agent: *\nDisallow: /private\n", content_type="text/plain")
    runs = {}
    for parallel in (1, 4):
        counter = InFlight(delays)
        site = serve_counted(servers, routes, counter, robots)
        stored: list[dict] = []
        result = crawl_site(site.url("/"), max_pages=max_pages, fetcher=fetcher,
                            politeness=Politeness(concurrency=parallel, default_delay=0.0),
                            on_record=stored.append, parallel=parallel)
        prefix = site.origin
        runs[parallel] = {
            "records": [tuple(str(v).replace(prefix, "") for v in row)
                        for row in summary(result.records)],
            "stored": [r["url"].replace(prefix, "") for r in stored],
            "requests": Counter(site.paths()),
            "peak": counter.peak,
        }
    sequential, parallel = runs[1], runs[4]
    assert parallel["records"] == sequential["records"]
    assert parallel["stored"] == sequential["stored"]
    assert sum(1 for row in sequential["records"] if row[3] == "True") == min(max_pages, 26)
    # the only extra request a parallel crawl may make: a page that an earlier page of its
    # level redirected to, fetched before that redirect was known
    extra = parallel["requests"] - sequential["requests"]
    assert set(extra) <= {"/new"} | {f"/p{n}/a" for n in range(10)}
    assert max_pages < 10 or parallel["peak"] > 1  # it did run requests side by side


def test_a_stopped_parallel_crawl_resumes_to_the_same_pages(servers, fetcher):
    routes, delays = mixed_site()
    site = serve_counted(servers, routes, InFlight(delays), ROBOTS_404)
    politeness = Politeness(concurrency=3, default_delay=0.0)
    straight = crawl_site(site.url("/"), max_pages=20, fetcher=fetcher, politeness=politeness)

    stored: list[dict] = []
    first = crawl_site(site.url("/"), max_pages=20, fetcher=fetcher, politeness=politeness,
                       on_record=stored.append, should_stop=lambda: len(stored) >= 7,
                       parallel=3)
    assert first.stopped and 7 <= len(stored) < len(straight.records)
    before = Counter(site.paths())
    resumed_new: list[dict] = []
    second = crawl_site(site.url("/"), max_pages=20, fetcher=fetcher, politeness=politeness,
                        done=list(stored), on_record=resumed_new.append, parallel=3)
    assert summary(second.records) == summary(straight.records)
    # a resumed crawl never asks again for a page it stored
    again = Counter(site.paths()) - before
    assert not {r["url"][len(site.origin):] for r in stored if r["status_code"]} & {
        path for path in again if path not in ("/robots.txt", "/sitemap.xml")}
    assert {r["url"] for r in stored}.isdisjoint(r["url"] for r in resumed_new)
