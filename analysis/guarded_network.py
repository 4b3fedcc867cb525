"""An httpcore network backend that applies the SSRF guard where the connection is made.

Every address a host name resolves to is judged; the socket connects only to an allowed
one and the address it actually reached (``getpeername``) is judged again, so neither DNS
rebinding nor an odd address spelling gets past the guard. Streams also honour a per-thread
deadline (:func:`deadline`) so a server that drips bytes cannot hold a request forever.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore

from analysis.ssrf import IPNetwork, judge_address

_DEADLINE: ContextVar[float | None] = ContextVar("rivalscope_fetch_deadline", default=None)

Resolver = Callable[..., list[tuple[Any, ...]]]
GATE_CACHE_SECONDS = 30.0
GATE_CACHE_SIZE = 4096


class BlockedAddress(Exception):
    """The guard refused every address of a host; ``str(exc)`` is the reason."""


@contextmanager
def deadline(seconds: float) -> Iterator[float]:
    """Bound every connect, read and write on this thread to finish within ``seconds``."""
    until = time.monotonic() + seconds
    token = _DEADLINE.set(until)
    try:
        yield until
    finally:
        _DEADLINE.reset(token)


def _bounded(timeout: float | None, *, on_expiry: type[Exception]) -> float | None:
    until = _DEADLINE.get()
    if until is None:
        return timeout
    remaining = until - time.monotonic()
    if remaining <= 0:
        raise on_expiry("total deadline passed")
    return remaining if timeout is None else min(timeout, remaining)


class DeadlineStream(httpcore.NetworkStream):
    """Wraps a network stream so each operation also respects the thread's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        bounded = _bounded(timeout, on_expiry=httpcore.ReadTimeout)
        return self._inner.read(max_bytes, bounded)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        bounded = _bounded(timeout, on_expiry=httpcore.WriteTimeout)
        self._inner.write(buffer, bounded)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, on_expiry=httpcore.ConnectTimeout)
        return DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, bounded))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.SyncBackend):
    """Synchronous backend that connects only to addresses the SSRF guard allows."""

    def __init__(
        self, allow_networks: Iterable[IPNetwork] = (), resolver: Resolver = socket.getaddrinfo
    ) -> None:
        self.allow_networks = tuple(allow_networks)
        self._resolve = resolver
        self._gate_addresses: dict[tuple[str, int], tuple[str | None, float]] = {}

    def gate_address(self, host: str, port: int) -> str | None:
        """The address a connection to ``host:port`` goes to first (the first allowed one),
        for the politeness gate; None when none resolves or is allowed. Cached briefly."""
        key = (host.lower(), port)
        cached = self._gate_addresses.get(key)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            addresses = self._addresses(host, port)
        except httpcore.ConnectError:
            addresses = []
        address = next((a for a in addresses if judge_address(a, self.allow_networks) is None),
                       None)
        if len(self._gate_addresses) > GATE_CACHE_SIZE:
            self._gate_addresses.clear()
        self._gate_addresses[key] = (address, now + GATE_CACHE_SECONDS)
        return address

    def _addresses(self, host: str, port: int) -> list[str]:
        try:
            infos = self._resolve(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"DNS lookup failed for {host}") from exc
        seen: list[str] = []
        for info in infos:
            address = str(info[4][0])
            if address not in seen:
                seen.append(address)
        if not seen:
            raise httpcore.ConnectError(f"DNS lookup failed for {host}")
        return seen

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._addresses(host, port)
        allowed: list[str] = []
        first_refusal = None
        for address in addresses:
            reason = judge_address(address, self.allow_networks)
            if reason is None:
                allowed.append(address)
            elif first_refusal is None:
                first_refusal = reason
        if not allowed:
            raise BlockedAddress(first_refusal or f"blocked address for {host}")
        last_error: Exception | None = None
        for address in allowed:
            bounded = _bounded(timeout, on_expiry=httpcore.ConnectTimeout)
            try:
                stream = super().connect_tcp(
                    address, port, bounded, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
                continue
            peer = stream.get_extra_info("server_addr")
            reason = judge_address(str(peer[0]) if peer else "", self.allow_networks)
            if reason is not None:
                stream.close()
                raise BlockedAddress(reason)
            return DeadlineStream(stream)
        assert last_error is not None
        raise last_error
