"""``flask demo``: an offline demonstration with three bundled competitor sites.

The sites under ``demo/sites/`` are served on 127.0.0.1 (free ports); a demo user submits a
batch against them and the command keeps serving until Ctrl-C. The worker must be allowed
to fetch loopback addresses: run the app with ``FETCH_ALLOW_NETWORKS=127.0.0.0/8``.

The command runs in its own process, so its environment says nothing about the worker's:
instead of guessing, it watches the batch and explains a site refused by the SSRF guard
when the worker reports one, and says when the batch has finished.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

import click
from flask.cli import with_appcontext

from analysis.ssrf import judge_address, parse_allow_networks
from config import BASE_DIR
from models import db
from tasks.analysis_tasks import start_batch
from utils.database_access import get_sync_session
from utils.db_operations import BatchOps, ReportOps, UserOps

SITES_DIR = BASE_DIR / "demo" / "sites"
DEMO_EMAIL = "demo@rivalscope.local"
DEMO_PASSWORD = "demo-password"
TEMPLATED = (".txt", ".xml")


class DemoSiteHandler(SimpleHTTPRequestHandler):
    """Static files of one demo site, plus its ``_headers`` file; ``{{origin}}`` in
    robots.txt and sitemaps becomes the site's real origin (its port is only known now)."""

    extra_headers: list[tuple[str, str]] = []

    def log_message(self, *_args) -> None:  # quiet: the command prints its own lines
        pass

    def end_headers(self) -> None:
        for name, value in self.extra_headers:
            self.send_header(name, value)
        super().end_headers()

    def send_head(self) -> BinaryIO | None:
        path = Path(self.translate_path(self.path))
        if path.name == "_headers":
            self.send_error(404)
            return None
        if path.suffix in TEMPLATED and path.is_file():
            host, port = self.server.server_address[:2]
            body = path.read_text(encoding="utf-8").replace(
                "{{origin}}", f"http://{host}:{port}").encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/xml" if path.suffix == ".xml"
                             else "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return BytesIO(body)
        return super().send_head()


@dataclass
class DemoSite:
    """One served demo site."""

    name: str
    server: ThreadingHTTPServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def _headers_of(folder: Path) -> list[tuple[str, str]]:
    file = folder / "_headers"
    if not file.is_file():
        return []
    pairs = []
    for line in file.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip():
            pairs.append((name.strip(), value.strip()))
    return pairs


def serve_demo_sites(sites_dir: Path = SITES_DIR, host: str = "127.0.0.1") -> list[DemoSite]:
    """Start one threaded HTTP server per folder of ``sites_dir`` on a free port."""
    served = []
    for folder in sorted(p for p in sites_dir.iterdir() if p.is_dir()):
        handler = type(f"{folder.name}Handler", (DemoSiteHandler,),
                       {"extra_headers": _headers_of(folder)})
        server = ThreadingHTTPServer((host, 0), partial(handler, directory=str(folder)))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name=f"demo-{folder.name}",
                                  daemon=True)
        thread.start()
        served.append(DemoSite(folder.name, server, thread))
    return served


def loopback_allowed(allow_networks: str) -> bool:
    """Whether FETCH_ALLOW_NETWORKS lets the worker fetch 127.0.0.1."""
    return judge_address("127.0.0.1", parse_allow_networks(allow_networks)) is None


LOOPBACK_NOTE = ("The worker refused the demo sites: it must allow loopback addresses. "
                 "Restart the app with\n  FETCH_ALLOW_NETWORKS=127.0.0.0/8 make run")


@dataclass
class DemoWatch:
    """What the demo command has already told about its batch."""

    batch_id: int
    warned: bool = False
    finished: bool = False

    def notes(self) -> list[str]:
        """New things to say: a site refused by the SSRF guard, the batch finishing."""
        said: list[str] = []
        with get_sync_session(db.engine, scope="cli", owner="demo") as session:
            batch = BatchOps.get(session, self.batch_id)
            if batch is None:
                return said
            sites = ReportOps.sites(session, self.batch_id)
            refused = any(s.status == "failed" and "blocked address" in (s.error or "")
                          for s in sites)
            if refused and not self.warned:
                self.warned = True
                said.append(LOOPBACK_NOTE)
            if batch.status in ("completed", "partial", "failed", "cancelled") \
                    and not self.finished:
                self.finished = True
                said.append(f"Batch {self.batch_id} finished: {batch.status}. Open "
                            f"/batches/{self.batch_id}/comparison to see who wins.")
        return said


def submit_demo_batch(urls: list[str], max_pages: int) -> tuple[int, bool]:
    """Create (or reuse) the demo user and submit a batch; enqueue it after the commit.

    Returns (batch id, whether the user was created now).
    """
    with get_sync_session(db.engine, scope="cli", owner="demo") as session:
        user = UserOps.by_email(session, DEMO_EMAIL)
        created = user is None
        if created:
            user = UserOps.create(session, DEMO_EMAIL, DEMO_PASSWORD)
        batch = BatchOps.create(session, user.id, "Demo: outdoor gear shops", urls, max_pages)
        batch_id = batch.id
    start_batch.delay(batch_id)
    return batch_id, created


@click.command("demo")
@click.option("--max-pages", default=10, show_default=True, type=click.IntRange(1, 200),
              help="Pages to crawl per demo site.")
@click.option("--serve-seconds", default=0.0, type=float, hidden=True,
              help="Stop after this many seconds (0: until Ctrl-C).")
@with_appcontext
def demo_command(max_pages: int, serve_seconds: float) -> None:
    """Serve three sample competitor sites locally and submit a batch against them."""
    sites = serve_demo_sites()
    try:
        for site in sites:
            click.echo(f"Serving demo site {site.name:<12} at {site.url}")
        batch_id, created = submit_demo_batch([site.url for site in sites], max_pages)
        who = "created" if created else "existing"
        click.echo(f"Submitted batch {batch_id} as the {who} demo user "
                   f"{DEMO_EMAIL} (password: {DEMO_PASSWORD}).")
        click.echo(f"Sign in and open /batches/{batch_id} to watch it. Press Ctrl-C to stop.")
        deadline = time.monotonic() + serve_seconds if serve_seconds > 0 else None
        watch = DemoWatch(batch_id)
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2 if deadline else 1.0)
            for note in watch.notes():
                click.secho(note, fg="yellow" if note == LOOPBACK_NOTE else None,
                            err=note == LOOPBACK_NOTE)
    except KeyboardInterrupt:
        click.echo("Stopping the demo sites.")
    finally:
        for site in sites:
            site.stop()
