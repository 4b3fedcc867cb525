"""A site with 100,000 links on every page, against the real worker and the real web process:
page records stay small, the pages list comes in windows, and both processes stay under
300 MB of resident memory (peak, read from /proc)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import sqlalchemy as sa

from analysis.html_facts import analyze_page
from models import Page, Site
from tasks.analysis_tasks import start_batch
from tests.conftest import free_port
from tests.factories import DEFAULT_PASSWORD
from tests.routes.api_support import user_with_token
from tests.tasks.test_crash_safety import wait_for
from tests.tasks.test_hostile_sites import children_of, ended
from tests.tasks.test_worker_process import ROOT, start_worker, stop_worker, worker_env
from utils.db_operations import BatchOps, PageOps
from utils.operations.pages import MAX_RECORD_BYTES

LINKS = 100_000
CRAWLED = 5  # pages the worker crawls (each ~2.3 MB, 100k links)
STORED = 60  # pages of the site the web process is asked about
LIMIT_MB = 300


def link_page() -> bytes:
    anchors = "".join(f'<a href="/p{i}">p</a>' for i in range(LINKS))
    return f"<html><head><title>Links</title></head><body>{anchors}</body></html>".encode()


class LinkSite:
    """Every /pN answers the same page of 100k internal links."""

    def __init__(self) -> None:
        body = link_page()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                ok = self.path == "/" or re.fullmatch(r"/p\d+", self.path)
                payload = body if ok else b""
                self.send_response(200 if ok else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.body = body
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/"

    def __enter__(self) -> LinkSite:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for {pid}")


def start_web(test_settings: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**worker_env(test_settings), "RIVALSCOPE_ROLE": "web", "WEB_WORKERS": "1",
           "WEB_THREADS": "2"}
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--bind",
         f"127.0.0.1:{port}", "app:app"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert web.poll() is None, "gunicorn exited"
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return web, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    web.kill()
    pytest.fail("gunicorn never answered")


def sign_in(base: str, email: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60)
    form = client.get("/login").text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
    data = {"email": email, "password": DEFAULT_PASSWORD}
    if token:
        data["csrf_token"] = token.group(1)
    assert client.post("/login", data=data).status_code == 302
    return client


def test_a_site_of_100k_links_per_page_keeps_worker_and_web_small(app, committed,
                                                                  test_settings):
    user, headers = user_with_token(committed, email="links@example.test")
    with LinkSite() as site:
        worker = start_worker(test_settings, env={"PAGE_BUDGET_SECONDS": "120"})
        try:
            batch_id = BatchOps.create(committed, user.id, "links", [site.url], CRAWLED).id
            committed.commit()
            start_batch.delay(batch_id)
            analysers: set[int] = set()

            def done() -> bool:
                analysers.update(children_of(worker.pid))
                return ended(committed, batch_id)

            wait_for(done, 120, "the crawl to end", worker)
            worker_mb = peak_rss_mb(worker.pid)
            child_mb = max((peak_rss_mb(pid) for pid in analysers if os.path.exists(
                f"/proc/{pid}/status")), default=0.0)
        finally:
            output = stop_worker(worker)
        assert "Traceback" not in output, output
        row = committed.scalar(sa.select(Site))
        assert row.status == "completed", row.error
        assert row.report["internal_links"] == LINKS  # the counts stay exact
        assert row.report["pages_crawled"] == CRAWLED
        # More pages like these, stored through the same path, for the web side.
        record = committed.scalar(sa.select(Page.record).where(Page.is_homepage))
        assert len(record["facts"]["links"]) == 1000
        assert record["facts"]["links_total"] == LINKS
        facts = analyze_page(site.body, f"{site.url}p0", [])
    for n in range(CRAWLED, STORED):
        PageOps.store(committed, row.id, {**record, "url": f"{site.url}x{n}",
                                          "final_url": f"{site.url}x{n}", "is_homepage": False,
                                          "facts": facts}, n)
    committed.commit()
    sizes = committed.scalars(sa.select(sa.func.length(sa.cast(Page.record, sa.Text)))).all()
    assert len(sizes) == STORED and max(sizes) <= MAX_RECORD_BYTES

    web, base = start_web(test_settings)
    try:
        api = httpx.Client(base_url=base, headers=headers, timeout=60)
        response = api.get(f"/api/v1/sites/{row.id}")
        assert response.status_code == 200, response.text
        first = response.json()
        assert len(first["pages"]) == 50 and first["pages_total"] == STORED
        assert len(api.get(f"/api/v1/sites/{row.id}?page=2").json()["pages"]) == STORED - 50
        browser = sign_in(base, user.email)
        for number in (1, 2):
            assert browser.get(f"/sites/{row.id}?page={number}").status_code == 200
        [web_worker] = children_of(web.pid)
        web_mb = peak_rss_mb(web_worker)
    finally:
        web.terminate()
        web.wait(20)
    print(f"peak RSS: worker {worker_mb:.0f} MB, analysis child {child_mb:.0f} MB, "
          f"web worker {web_mb:.0f} MB")
    assert worker_mb < LIMIT_MB and child_mb < LIMIT_MB and web_mb < LIMIT_MB
