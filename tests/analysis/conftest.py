"""Real HTTP servers on loopback for the network-side tests.

``serve(routes, host="127.0.0.1")`` starts a threaded HTTP/1.0 server on a free port and
returns a :class:`TestSite`; every request is logged (path, arrival time, headers) so tests
can count what reached the server. ``counting_listener(host)`` is a bare TCP listener that
only counts accepted connections: the SSRF tests assert it stays at zero.
All servers are shut down when the test ends.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from analysis.fetcher import FetchConfig, Fetcher
from analysis.ssrf import parse_allow_networks

LOOPBACK_V4 = parse_allow_networks("127.0.0.0/8")


@dataclass
class Reply:
    """A canned response."""

    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "text/html; charset=utf-8"

    def send(self, handler: BaseHTTPRequestHandler) -> None:
        body = self.body.encode("utf-8") if isinstance(self.body, str) else self.body
        handler.send_response(self.status)
        if self.content_type is not None:
            handler.send_header("Content-Type", self.content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in self.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status=status, headers={"Location": location}, content_type=None)


def html(title: str = "Page", links: list[str] = (), extra: str = "") -> Reply:
    anchors = "".join(f'<a href="{href}">{href}</a> ' for href in links)
    return Reply(
        body=(
            f"<!doctype html><html lang=en><head><title>{title}</title></head>"
            f"<body><h1>{title}</h1><p>{anchors}</p>{extra}</body></html>"
        )
    )


Route = Reply | Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Hit:
    path: str
    at: float
    headers: dict[str, str]


class TestSite:
    """A running server plus its request log."""

    __test__ = False

    def __init__(self, server: ThreadingHTTPServer, host: str) -> None:
        self.server = server
        self.host = host
        self.port = server.server_address[1]
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.origin + path

    def paths(self) -> list[str]:
        with self.lock:
            return [h.path for h in self.hits]

    def count(self, path: str) -> int:
        return self.paths().count(path)

    def times(self) -> list[float]:
        with self.lock:
            return [h.at for h in self.hits]


def _handler_class(site_ref: dict, routes: dict[str, Route], fallback: Route | None) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:  # noqa: N802
            site: TestSite = site_ref["site"]
            with site.lock:
                site.hits.append(Hit(self.path, time.monotonic(), dict(self.headers.items())))
            route = routes.get(self.path, fallback)
            if route is None:
                route = Reply(status=404, body="not found")
            try:
                if isinstance(route, Reply):
                    route.send(self)
                else:
                    route(self)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


class _ServerRunner:
    def __init__(self) -> None:
        self.sites: list[TestSite] = []
        self.listeners: list[CountingListener] = []

    def serve(
        self, routes: dict[str, Route], host: str = "127.0.0.1", fallback: Route | None = None
    ) -> TestSite:
        site_ref: dict = {}
        server_cls = ThreadingHTTPServer
        if ":" in host:
            server_cls = type(
                "V6Server", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6}
            )
        server = server_cls((host, 0), _handler_class(site_ref, routes, fallback))
        server.daemon_threads = True
        site = TestSite(server, host)
        site_ref["site"] = site
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.daemon = True
        thread.start()
        self.sites.append(site)
        return site

    def close(self) -> None:
        for site in self.sites:
            site.stop.set()
            site.server.shutdown()
            site.server.server_close()
        for listener in self.listeners:
            listener.close()


class CountingListener:
    """A TCP listener that accepts, counts and drops connections (and keeps any bytes sent)."""

    def __init__(self, host: str, port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.received = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.settimeout(0.2)
            try:
                self.received += conn.recv(4096)
            except OSError:
                pass
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def servers() -> Iterator[_ServerRunner]:
    """Factory fixture: ``servers.serve(routes, host=...)``; everything stops at teardown."""
    runner = _ServerRunner()
    try:
        yield runner
    finally:
        runner.close()


@pytest.fixture
def counting_listener(servers: _ServerRunner) -> Callable[..., CountingListener]:
    def make(host: str = "127.0.0.1", port: int = 0) -> CountingListener:
        listener = CountingListener(host, port)
        servers.listeners.append(listener)
        return listener

    return make


def make_fetcher(**overrides: object) -> Fetcher:
    """A fetcher allowed to reach 127.0.0.0/8, with small limits suitable for tests."""
    options: dict = {
        "allow_networks": LOOPBACK_V4,
        "connect_timeout": 2.0,
        "read_timeout": 3.0,
        "total_timeout": 5.0,
        "max_body_bytes": 1_000_000,
        "max_retry_after": 2.0,
        "default_retry_after": 0.1,
    }
    options.update(overrides)
    return Fetcher(FetchConfig(**options))


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    f = make_fetcher()
    try:
        yield f
    finally:
        f.close()
