"""Hostile sites against a real worker: pages whose analysis would never end are stopped at
the page budget, the crawl goes on, other users are served, and shutdown does not wait."""

from __future__ import annotations

import gzip
import os
import signal
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import sqlalchemy as sa

from models import Batch, Site
from models.base import utcnow
from tasks.analysis_tasks import requeue_stalled_sites, start_batch
from tests.analysis.budget_targets import MARKER
from tests.factories import UserFactory
from tests.sites import LocalSite, SiteSpec
from tests.tasks.test_crash_safety import wait_for
from tests.tasks.test_worker_process import start_worker, stop_worker
from utils.db_operations import BatchOps

OPTIONS = b"<select>" + b"<option>" * 600_000  # 4.8 MB raw, a few KB gzipped
RUBY = b"<rp>" * 1_200_000
SPIN = b"<title>spin</title><p>" + MARKER  # the test target never finishes on this page
NORMAL = b"<title>ok</title><h1>ok</h1><a href='/bad'>bad</a><a href='/good'>good</a>"
SPIN_TARGET = {"PAGE_ANALYSIS_TARGET": "tests.analysis.budget_targets:spin_on_marker"}


class HostileSite:
    """Serves ``pages`` ({path: html bytes}) gzipped on 127.0.0.1; anything else is a 404."""

    def __init__(self, pages: dict[str, bytes]) -> None:
        compressed = {path: gzip.compress(body, 9) for path, body in pages.items()}
        self.hits: Counter[str] = Counter()
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                hits[self.path] += 1
                body = compressed.get(self.path.split("?", 1)[0])
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                if body is not None:
                    self.send_header("Content-Encoding", "gzip")
                body = body if body is not None else b""
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/"

    def __enter__(self) -> HostileSite:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def submit(session, urls: list[str], max_pages: int) -> int:
    batch = BatchOps.create(session, UserFactory().id, "hostile", urls, max_pages)
    session.commit()
    start_batch.delay(batch.id)
    return batch.id


def sites_of(session, batch_id: int) -> dict[str, Site]:
    session.rollback()
    rows = session.scalars(sa.select(Site).where(Site.batch_id == batch_id))
    return {site.url: site for site in rows}


def ended(session, batch_id: int) -> bool:
    return all(s.status in ("completed", "failed") for s in sites_of(session, batch_id).values())


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_hostile_pages_are_cut_off_and_another_user_is_served(app, committed, test_settings):
    sites = [HostileSite({"/": OPTIONS}), HostileSite({"/": RUBY}), HostileSite({"/": SPIN}),
             HostileSite({"/": NORMAL, "/bad": SPIN, "/good": b"<title>good</title>"})]
    for site in sites:
        site.__enter__()
    worker = start_worker(test_settings, env={"PAGE_BUDGET_SECONDS": "4", **SPIN_TARGET})
    try:
        started = time.monotonic()
        hostile = submit(committed, [s.url for s in sites], max_pages=5)
        with LocalSite(SiteSpec(title="Other user", pages=0)) as other_site:
            other = submit(committed, [other_site.url], max_pages=1)
            wait_for(lambda: ended(committed, other), 30, "the other user's batch", worker)
        wait_for(lambda: ended(committed, hostile), 30, "the hostile sites to end", worker)
        assert time.monotonic() - started < 30 + 5
        by_url = sites_of(committed, hostile)
        options, ruby, spin, linked = (by_url[s.url] for s in sites)
        # The reported payloads are cut before parsing, so they are normally analysed well
        # inside the budget; on a starved machine the budget still ends them.
        for row in (options, ruby):
            assert row.status == "completed" or row.error.startswith("parse_budget_exceeded")
        # A homepage over budget fails its site with that reason.
        assert spin.status == "failed" and spin.error.startswith("parse_budget_exceeded")
        # A page over budget is an issue; the crawl went on past it.
        assert linked.status == "completed", linked.error
        issues = {i["code"]: i["count"] for i in linked.report["issues"]}
        assert issues.get("parse_budget_exceeded") == 1
        assert linked.report["pages_crawled"] == 2  # the homepage and /good
        assert [s.status for s in sites_of(committed, other).values()] == ["completed"]
    finally:
        output = stop_worker(worker)
        for site in sites:
            site.__exit__()
    assert "Traceback" not in output, output


def test_warm_shutdown_stops_an_analysis_in_progress(app, committed, test_settings):
    with HostileSite({"/": SPIN}) as site:
        worker = start_worker(test_settings, env={"PAGE_BUDGET_SECONDS": "600", **SPIN_TARGET})
        try:
            batch_id = submit(committed, [site.url], max_pages=1)

            def analysing() -> bool:
                status = [s.status for s in sites_of(committed, batch_id).values()]
                return status == ["running"] and len(children_of(worker.pid)) == 1

            wait_for(analysing, 30, "the analysis to start", worker)
            [child] = children_of(worker.pid)
            os.kill(worker.pid, signal.SIGTERM)  # warm shutdown
            stopped = time.monotonic()
            worker.wait(30)
            assert time.monotonic() - stopped < 30
            assert not alive(child)  # killed, not left behind
            # Stopped, not failed, and handed back: the next requeue resumes it at once
            # (its lease was released, not left to expire).
            [row] = sites_of(committed, batch_id).values()
            assert row.status in ("running", "pending") and row.error is None
            committed.rollback()
            lease_until = committed.scalar(sa.select(Site.lease_until))
            assert lease_until is None or lease_until <= utcnow()
            assert requeue_stalled_sites.apply().get()["sites"] == [row.id]
        finally:
            output = stop_worker(worker)
    assert "Traceback" not in output, output


def test_prefork_workers_enforce_the_budget_too(app, committed, test_settings):
    """Each prefork child owns its pool (fresh interpreters, never forks of the child)."""
    with HostileSite({"/": SPIN}) as spin, LocalSite(SiteSpec(pages=0)) as normal:
        worker = start_worker(test_settings, None, "--pool", "prefork", "--concurrency", "1",
                              env={"PAGE_BUDGET_SECONDS": "2", **SPIN_TARGET})
        try:
            batch_id = submit(committed, [spin.url, normal.url], max_pages=1)
            wait_for(lambda: ended(committed, batch_id), 60, "the batch to end", worker)
            by_url = sites_of(committed, batch_id)
            assert by_url[spin.url].error.startswith("parse_budget_exceeded")
            assert by_url[normal.url].status == "completed"
        finally:
            output = stop_worker(worker)
    assert "(prefork)" in output and "Traceback" not in output, output


def test_cancel_stops_the_crawl_within_the_budget(app, committed, test_settings):
    """The analysis in progress ends at the budget at the latest; the crawl stops there."""
    home = b"<title>home</title>" + b"".join(b"<a href='/s%d'>s</a>" % i for i in range(1, 6))
    pages = {"/": home, **{f"/s{i}": SPIN for i in range(1, 6)}}
    with HostileSite(pages) as site:
        worker = start_worker(test_settings, env={"PAGE_BUDGET_SECONDS": "4", **SPIN_TARGET})
        try:
            batch_id = submit(committed, [site.url], max_pages=6)
            # the crawl's window (FETCH_PER_ORIGIN + 1 = 2): /s2 is fetched while /s1 spins
            wait_for(lambda: site.hits["/s1"] == 1 and site.hits["/s2"] == 1, 30,
                     "the first spinning page and the next one", worker)
            committed.rollback()
            assert BatchOps.cancel(committed, committed.get(Batch, batch_id))
            committed.commit()
            cancelled = time.monotonic()
            hits_at_cancel = dict(site.hits)
            wait_for(lambda: not children_of(worker.pid), 4 + 10, "the analysis to end", worker)
            assert time.monotonic() - cancelled < 4 + 10
            time.sleep(1)
            assert dict(site.hits) == hits_at_cancel  # nothing fetched after the cancel
            assert site.hits["/s3"] == 0
            [row] = sites_of(committed, batch_id).values()
            assert row.status == "cancelled" and row.error is None
        finally:
            output = stop_worker(worker)
    assert "Traceback" not in output, output


def test_a_killed_worker_leaves_no_analysis_running(app, committed, test_settings):
    with HostileSite({"/": SPIN}) as site:
        worker = start_worker(test_settings, env={"PAGE_BUDGET_SECONDS": "600", **SPIN_TARGET})
        try:
            batch_id = submit(committed, [site.url], max_pages=1)
            wait_for(lambda: len(children_of(worker.pid)) == 1, 30, "the analysis", worker)
            [child] = children_of(worker.pid)
            os.kill(worker.pid, signal.SIGKILL)  # the worker only, not its process group
            worker.wait(10)
            deadline = time.monotonic() + 10
            while alive(child) and time.monotonic() < deadline:
                time.sleep(0.1)
            orphan = alive(child)
            if orphan:
                os.kill(child, signal.SIGKILL)  # it would hold the worker's output pipe open
            assert not orphan  # no analysis left spinning on the hostile page
            assert [s.status for s in sites_of(committed, batch_id).values()] == ["running"]
        finally:
            stop_worker(worker)
