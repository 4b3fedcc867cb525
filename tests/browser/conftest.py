"""Real headless Chromium against a live server of the app and a real worker process, both
sharing the test database and broker. Skipped only when /usr/bin/chromium is absent."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from app import create_app
from config import TestConfig
from models import db
from tests.tasks.test_worker_process import start_worker, stop_worker
from utils.db_session_manager import SESSION_MANAGER

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="session")
def browser() -> Iterator:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent (CI installs it with apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def live_server(app, test_settings) -> Iterator[str]:
    """Another app instance (CSRF on, as in production) served by a threaded server."""
    application = create_app(TestConfig, role="web",
                             **{**test_settings, "WTF_CSRF_ENABLED": True})
    server = make_server("127.0.0.1", 0, application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(10)
    with application.app_context():
        db.engine.dispose()
    app.extensions["celery"].set_default()


@pytest.fixture(scope="module")
def pipeline_worker(app, test_settings) -> Iterator:
    """A real ``celery worker`` process on this run's queue."""
    process = start_worker(test_settings)
    yield process
    output = stop_worker(process)
    assert "Traceback" not in output, output


@pytest.fixture
def screenshots(output_dir: Path) -> Path:
    folder = output_dir / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class PageWatch:
    """What a page did that it should not: dialogs (alert), console errors, page errors."""

    def __init__(self) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []

    def attach(self, page) -> None:
        def on_dialog(dialog) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._console)

    def _console(self, message) -> None:
        # A form answered 400 on purpose (validation) is logged as a failed resource.
        expected = "status of 400" in message.text and "Failed to load resource" in message.text
        if message.type == "error" and not expected:
            self.errors.append(f"console: {message.text} at {message.location}")


@pytest.fixture
def watched_page(browser, live_server) -> Iterator[tuple]:
    """A fresh browser context and page on the live server, with its misbehaviour recorded."""
    context = browser.new_context(base_url=live_server, viewport=DESKTOP, accept_downloads=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    watch = PageWatch()
    watch.attach(page)
    yield page, watch
    context.close()
    # Requests the page started may still be finishing in the server's threads.
    deadline = time.monotonic() + 10
    while SESSION_MANAGER.open_sessions() and time.monotonic() < deadline:
        time.sleep(0.05)
