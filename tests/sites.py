"""Small generated websites served on 127.0.0.1 for pipeline, browser and drill tests."""

from __future__ import annotations

import html
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class SiteSpec:
    """What a generated site looks like."""

    title: str = "Example Co"
    pages: int = 5                  # pages besides the homepage: /p1 .. /pN
    delay: float = 0.0              # seconds before each answer
    homepage_status: int = 200
    broken_link: bool = False       # the homepage links to /missing (404)
    extra_head: str = ""
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # path -> (type, body)
    path_delays: dict[str, float] = field(default_factory=dict)  # per-path extra delay
    served: Counter = field(default_factory=Counter)
    # requests being answered now (from arrival until the answer starts to go out: a client
    # sends its next request as soon as it has read the last one), and the most at once
    in_flight: int = 0
    peak_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class _Handler(BaseHTTPRequestHandler):
    spec: SiteSpec

    def log_message(self, *_args) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        spec = self.spec
        with spec.lock:
            spec.in_flight += 1
            spec.peak_in_flight = max(spec.peak_in_flight, spec.in_flight)
        self._counted = True
        try:
            self._answer(spec)
        finally:
            self._answering(spec)

    def _answering(self, spec: SiteSpec) -> None:
        """The answer starts to go out: the request no longer counts as in flight."""
        if self._counted:
            self._counted = False
            with spec.lock:
                spec.in_flight -= 1

    def _answer(self, spec: SiteSpec) -> None:
        path = self.path.split("?", 1)[0]
        spec.served[path] += 1
        if spec.delay or path in spec.path_delays:
            time.sleep(spec.delay + spec.path_delays.get(path, 0.0))
        if path in spec.files:
            content_type, body = spec.files[path]
            return self._send(200, content_type, body)
        if path == "/robots.txt":
            return self._send(404, "text/plain", b"")
        if path == "/":
            if spec.homepage_status != 200:
                return self._send(spec.homepage_status, "text/html", b"<h1>error</h1>")
            links = [f"/p{i}" for i in range(1, spec.pages + 1)]
            if spec.broken_link:
                links.append("/missing")
            return self._page(spec.title, links, spec.extra_head)
        if path.startswith("/p") and path[2:].isdigit() and 1 <= int(path[2:]) <= spec.pages:
            number = int(path[2:])
            nxt = [f"/p{number + 1}"] if number < spec.pages else []
            return self._page(f"{spec.title} page {number}", ["/", *nxt], "")
        return self._send(404, "text/html", b"<h1>not found</h1>")

    def _page(self, title: str, links: list[str], head: str) -> None:
        anchors = "".join(f'<li><a href="{link}">{html.escape(link)}</a></li>' for link in links)
        body = (f"<!doctype html><html lang='en'><head><title>{title}</title>"
                f"<meta name='description' content='About {html.escape(title)}'>{head}</head>"
                f"<body><h1>{html.escape(title)}</h1><p>Contact: hello@example.test</p>"
                f"<ul>{anchors}</ul></body></html>").encode()
        self._send(200, "text/html; charset=utf-8", body)

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self._answering(self.spec)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class LocalSite:
    """A running generated site; ``url`` is its homepage. Use as a context manager."""

    def __init__(self, spec: SiteSpec | None = None) -> None:
        self.spec = spec or SiteSpec()
        handler = type("Handler", (_Handler,), {"spec": self.spec})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/"

    def __enter__(self) -> LocalSite:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
