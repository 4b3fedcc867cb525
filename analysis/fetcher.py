"""HTTP fetching for the crawler: bounded in time and size, redirect-aware, SSRF-guarded.

:class:`Fetcher` wraps one httpx client (``trust_env=False``: no proxies or netrc from the
environment, no cookies kept between requests) whose connections go through
:class:`~analysis.guarded_network.GuardedBackend`. Redirects are followed here, hop by hop,
so each hop is judged, logged in the redirect chain and checked for loops. Failures never
raise: they come back as :class:`FetchResult` with ``error`` naming the cause.
"""

from __future__ import annotations

import email.utils
import http.cookiejar
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urljoin, urlsplit

import httpx

from analysis.body_decoding import BadEncoding, BodyTooLarge, decode_stream, parse_encodings
from analysis.guarded_network import BlockedAddress, GuardedBackend, deadline
from analysis.ssrf import AddressParseError, IPNetwork, judge_address, parse_ip
from analysis.urls import canonical_url

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (compatible; Rivalscope/1.0; +https://github.com/rivalscope/rivalscope)"
)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
HTML_TYPES = ("text/html", "application/xhtml+xml")


class SlotProvider(Protocol):
    """What the fetcher needs of a politeness object."""

    def slot(self, url: str, address: str | None = None) -> AbstractContextManager[None]: ...


@dataclass(frozen=True)
class FetchConfig:
    """Limits and identity for fetching. Times are seconds, sizes bytes."""

    user_agent: str = DEFAULT_USER_AGENT
    robots_token: str = "Rivalscope"
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_timeout: float = 20.0
    max_body_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 5
    allow_networks: tuple[IPNetwork, ...] = ()
    max_429_retries: int = 1
    max_retry_after: float = 10.0
    default_retry_after: float = 1.0
    verify_tls: bool = True
    accept_language: str = "en;q=1.0, *;q=0.5"
    max_connections: int = 20

    def __post_init__(self) -> None:
        object.__setattr__(self, "allow_networks", tuple(self.allow_networks))


@dataclass
class FetchResult:
    """What one fetch produced. ``error`` is None only for a 2xx answer whose body was read
    (or deliberately skipped, see ``body_skipped``)."""

    url: str
    final_url: str
    status_code: int | None = None
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    body_skipped: bool = False
    response_time_ms: int = 0
    redirect_chain: list[dict] = field(default_factory=list)
    error: str | None = None

    @property
    def page_bytes(self) -> int:
        """Body length after Content-Encoding was removed."""
        return len(self.body)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def is_html(self) -> bool:
        """A missing Content-Type is given the benefit of the doubt."""
        return is_html_type(self.content_type)


def is_html_type(content_type: str | None) -> bool:
    """True for text/html and XHTML, and when no type was sent."""
    if not content_type:
        return True
    return content_type.split(";", 1)[0].strip().lower() in HTML_TYPES


class _HopError(Exception):
    """A failure of one request; the message is the reason shown to users."""


@dataclass
class _Hop:
    status: int
    headers: list[tuple[str, str]]
    content_type: str | None
    location: str | None
    body: bytes
    body_skipped: bool
    elapsed_ms: int


def _retry_after_seconds(value: str | None, default: float) -> float:
    if not value:
        return default
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _no_cookies() -> http.cookiejar.CookieJar:
    return http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


@dataclass
class _OriginPool:
    transport: _GuardedTransport
    users: int = 0  # requests using it now
    last_used: float = 0.0


class _OriginTransports:
    """One guarded transport (connection pool) per origin, made on first use.

    httpcore's pool scans every connection it holds for each request and each response it
    closes, so one pool shared by every crawl thread of a process costs O(connections) per
    request; per origin, a pool holds the one or few connections of that site. Pools idle
    for ``idle_seconds`` are closed when a new one is made, and at most ``max_idle`` idle
    pools are kept."""

    def __init__(self, config: FetchConfig, backend: GuardedBackend, *,
                 idle_seconds: float = 30.0, max_idle: int = 64) -> None:
        self.config = config
        self.backend = backend
        # loading the CA bundle costs ~0.1 s of CPU: once per fetcher, not once per origin
        self.ssl_context = httpx.create_ssl_context(verify=config.verify_tls, trust_env=False)
        self.idle_seconds = idle_seconds
        self.max_idle = max_idle
        self._lock = threading.Lock()
        self._pools: dict[tuple[str, str, int], _OriginPool] = {}

    @contextmanager
    def transport(self, request: httpx.Request) -> Iterator[_GuardedTransport]:
        """The origin's transport, held (not closed) while the caller uses it."""
        key = (request.url.scheme, request.url.host, request.url.port or 0)
        with self._lock:
            pool = self._pools.get(key)
            stale = []
            if pool is None:
                stale = self._stale()
                pool = self._pools[key] = _OriginPool(self.new_transport())
            pool.users += 1
        for transport in stale:
            transport.close()
        try:
            yield pool.transport
        finally:
            with self._lock:
                pool.users -= 1
                pool.last_used = time.monotonic()

    def new_transport(self) -> _GuardedTransport:
        return _GuardedTransport(self.config, self.backend, self.ssl_context)

    def _stale(self) -> list[_GuardedTransport]:
        """Remove (under the lock) and return the pools to close: idle too long, or the oldest
        idle ones past ``max_idle``."""
        now = time.monotonic()
        idle = sorted((pool.last_used, key) for key, pool in self._pools.items()
                      if pool.users == 0)
        drop = {key for last, key in idle if now - last > self.idle_seconds}
        drop.update(key for _, key in idle[: max(0, len(idle) - self.max_idle)])
        return [self._pools.pop(key).transport for key in drop]

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.transport.close()


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with its connection pool built on the guarded network backend."""

    def __init__(self, config: FetchConfig, backend: GuardedBackend,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        if ssl_context is None:  # share one where transports are made often (~0.1 s of CPU)
            ssl_context = httpx.create_ssl_context(verify=config.verify_tls, trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False)
        import httpcore

        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=config.max_connections,
            max_keepalive_connections=config.max_connections,
            keepalive_expiry=5.0,
            http1=True,
            http2=False,
            network_backend=backend,
        )


class Fetcher:
    """Thread-safe fetcher; share one per worker process and ``close()`` it at the end."""

    def __init__(
        self,
        config: FetchConfig | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        backend: GuardedBackend | None = None,
        before_request: Callable[[str], None] | None = None,
    ) -> None:
        """``backend`` replaces the guarded network backend (tests inject a resolver).
        ``before_request(url)`` runs before each request (each redirect hop and retry) and
        may raise to stop it: the caller's check that it holds nothing across the wait."""
        self.config = config or FetchConfig()
        self._sleep = sleep
        self._before_request = before_request
        self.backend = backend or GuardedBackend(self.config.allow_networks)
        timeout = httpx.Timeout(
            connect=self.config.connect_timeout,
            read=self.config.read_timeout,
            write=self.config.read_timeout,
            pool=self.config.connect_timeout,
        )
        self._transports = _OriginTransports(self.config, self.backend)
        # The client only builds requests (headers, timeouts); they are sent straight through
        # the origin's transport, because httpx's own redirect bookkeeping raises on a
        # Location it cannot parse before we could judge it ourselves.
        self._client = httpx.Client(
            transport=self._transports.new_transport(),  # never sends
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            cookies=_no_cookies(),
            headers={
                "User-Agent": self.config.user_agent,
                "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5",
                "Accept-Encoding": "gzip, deflate",
                "Accept-Language": self.config.accept_language,
            },
        )

    def close(self) -> None:
        """Close pooled connections."""
        self._transports.close()
        self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fetch(
        self,
        url: str,
        *,
        politeness: SlotProvider | None = None,
        max_bytes: int | None = None,
        want_body: Callable[[str | None], bool] | None = None,
        truncate: bool = False,
    ) -> FetchResult:
        """GET ``url`` following up to ``max_redirects`` redirects; never raises for network
        or server trouble (see ``FetchResult.error``).

        ``politeness`` gates every request (each redirect hop on its own origin).
        ``want_body(content_type)`` may decline to download a 2xx body (``body_skipped``).
        Non-2xx bodies are not downloaded. ``truncate`` keeps the first ``max_bytes`` of a
        larger body instead of failing (robots.txt is read that way).
        """
        limit = max_bytes or self.config.max_body_bytes
        reader = _BodyReader(limit, truncate)
        try:
            current = canonical_url(url)
        except ValueError as exc:  # InvalidURL, or urllib's own complaint about brackets
            return FetchResult(url=url, final_url=url, error=f"invalid URL: {exc}")
        if urlsplit(current).scheme not in ("http", "https") or not urlsplit(current).hostname:
            return FetchResult(url=current, final_url=current, error="invalid URL: not http(s)")
        result = FetchResult(url=current, final_url=current)
        visited = {current}
        while True:
            try:
                hop = self._request_with_retry(current, politeness, reader, want_body)
            except _HopError as exc:
                result.final_url = current
                result.status_code = None
                result.content_type = None
                result.headers = []
                result.error = str(exc)
                return result
            result.final_url = current
            result.status_code = hop.status
            result.content_type = hop.content_type
            result.headers = hop.headers
            result.response_time_ms = hop.elapsed_ms
            if hop.status in REDIRECT_STATUSES and hop.location:
                result.redirect_chain.append({"url": current, "status": hop.status})
                target = self._redirect_target(current, hop.location)
                if target is None:
                    result.error = f"redirect to unsupported URL {hop.location!r}"
                    return result
                if target in visited:
                    result.error = f"redirect loop: {target} was already visited"
                    return result
                if len(result.redirect_chain) > self.config.max_redirects:
                    result.error = f"too many redirects (more than {self.config.max_redirects})"
                    return result
                visited.add(target)
                current = target
                continue
            result.body = hop.body
            result.body_skipped = hop.body_skipped
            if not 200 <= hop.status < 300:
                result.error = f"HTTP {hop.status}"
            return result

    @staticmethod
    def _redirect_target(current: str, location: str) -> str | None:
        try:
            target = urljoin(current, location.strip())
            if urlsplit(target).scheme.lower() not in ("http", "https"):
                return None
            target = canonical_url(target)
        except ValueError:
            return None
        return target if urlsplit(target).hostname else None

    def _request_with_retry(
        self,
        url: str,
        politeness: SlotProvider | None,
        reader: _BodyReader,
        want_body: Callable[[str | None], bool] | None,
    ) -> _Hop:
        self._precheck(url)
        attempts = 0
        while True:
            if self._before_request is not None:
                self._before_request(url)
            gate = (politeness.slot(url, self._gate_address(url)) if politeness is not None
                    else nullcontext())
            with gate:
                hop = self._request(url, reader, want_body)
            if hop.status != 429 or attempts >= self.config.max_429_retries:
                return hop
            wait = _retry_after_seconds(
                _header(hop.headers, "retry-after"), self.config.default_retry_after
            )
            if wait > self.config.max_retry_after:
                raise _HopError(f"HTTP 429 (Retry-After {wait:.0f} s is too long)")
            attempts += 1
            log.info("429 from %s, retrying in %.1f s", url, wait)
            self._sleep(wait)

    def _gate_address(self, url: str) -> str | None:
        """Where ``url``'s connection will go, so hostnames of one server share a gate."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            return str(parse_ip(host))
        except AddressParseError:
            pass
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return None
        return self.backend.gate_address(host, port)

    def _precheck(self, url: str) -> None:
        """Refuse literal addresses in any spelling before anything is sent."""
        host = urlsplit(url).hostname or ""
        try:
            addr = parse_ip(host)
        except AddressParseError:
            return
        reason = judge_address(addr, self.config.allow_networks)
        if reason is not None:
            raise _HopError(reason)

    def _request(
        self, url: str, reader: _BodyReader, want_body: Callable[[str | None], bool] | None
    ) -> _Hop:
        total = self.config.total_timeout
        started = time.monotonic()
        with deadline(total) as until:
            try:
                return self._exchange(url, reader, want_body, started)
            except BlockedAddress as exc:
                raise _HopError(str(exc)) from None
            except BodyTooLarge as exc:
                raise _HopError(str(exc)) from None
            except BadEncoding as exc:
                raise _HopError(f"content decoding failed: {exc}") from None
            except httpx.TimeoutException as exc:
                if time.monotonic() >= until - 0.01:
                    raise _HopError(f"timeout: no complete response within {total:g} s") from None
                if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
                    raise _HopError(
                        f"timeout: could not connect within {self.config.connect_timeout:g} s"
                    ) from None
                raise _HopError(
                    f"timeout: no data for {self.config.read_timeout:g} s"
                ) from None
            except httpx.InvalidURL as exc:
                raise _HopError(f"invalid URL: {exc}") from None
            except httpx.ConnectError as exc:
                raise _HopError(f"network error: {_short(exc)}") from None
            except httpx.HTTPError as exc:
                raise _HopError(f"network error: {_short(exc)}") from None

    def _exchange(
        self,
        url: str,
        reader: _BodyReader,
        want_body: Callable[[str | None], bool] | None,
        started: float,
    ) -> _Hop:
        request = self._client.build_request("GET", url)
        with self._transports.transport(request) as transport:
            return self._answer(transport.handle_request(request), reader, want_body, started)

    def _answer(self, response: httpx.Response, reader: _BodyReader,
                want_body: Callable[[str | None], bool] | None, started: float) -> _Hop:
        try:
            headers = [
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw
            ]
            content_type = response.headers.get("content-type")
            status = response.status_code
            body = b""
            skipped = False
            if 200 <= status < 300:
                if want_body is not None and not want_body(content_type):
                    skipped = True
                else:
                    body = reader.read(response)
            elapsed_ms = int((time.monotonic() - started) * 1000)
            return _Hop(
                status=status,
                headers=headers,
                content_type=content_type,
                location=response.headers.get("location"),
                body=body,
                body_skipped=skipped,
                elapsed_ms=elapsed_ms,
            )
        finally:
            response.close()


@dataclass(frozen=True)
class _BodyReader:
    limit: int
    truncate: bool

    def read(self, response: httpx.Response) -> bytes:
        """The body with Content-Encoding removed, bounded by ``limit``."""
        encodings = parse_encodings(response.headers.get("content-encoding"))
        declared = response.headers.get("content-length", "").strip()
        too_big = declared.isdigit() and int(declared) > self.limit
        if too_big and not encodings and not self.truncate:
            raise BodyTooLarge(self.limit)
        return decode_stream(response.iter_raw(), encodings, self.limit, truncate=self.truncate)


def _header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
