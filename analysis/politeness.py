"""Per-server politeness: how many requests at once and how long between them.

One :class:`Politeness` object is shared by every crawling thread of a worker process, so two
sites on the same origin (scheme, host, port) never hammer it together, while different
origins (two ports on one host are two origins) proceed independently.

The gate's key is the origin with its host replaced by the address the fetcher connects to,
when the fetcher passes it: two hostnames served by one address and port share one gate.
A robots.txt crawl-delay stays per origin; a shared gate applies the largest delay among the
origins that used it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from analysis.urls import origin_of

Origin = tuple[str, str, int]


@dataclass
class _OriginState:
    slots: threading.BoundedSemaphore
    delay: float
    next_start: float = 0.0
    last_end: float | None = None
    users: int = 0
    last_used: float = field(default_factory=time.monotonic)
    origins: set[Origin] = field(default_factory=set)


class Politeness:
    """Thread-safe per-origin gate: ``with politeness.slot(url): <one HTTP request>``.

    - ``concurrency``: requests in flight at once per origin.
    - ``default_delay``: seconds between the end of one request and the start of the next on
      the same origin (and between starts, when concurrency > 1).
    - ``max_delay``: cap on a robots.txt crawl-delay (a site cannot stall a worker for long).
    """

    def __init__(
        self,
        *,
        concurrency: int = 1,
        default_delay: float = 1.0,
        max_delay: float = 10.0,
        idle_expiry: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self.default_delay = max(0.0, default_delay)
        self.max_delay = max(self.default_delay, max_delay)
        self.idle_expiry = idle_expiry
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._origins: dict[Origin, _OriginState] = {}  # by gate key
        self._delays: dict[Origin, float] = {}  # crawl-delays by origin
        self._key_of: dict[Origin, Origin] = {}  # origin -> the gate key it last used

    def _state(self, origin: Origin) -> _OriginState:
        state = self._origins.get(origin)
        if state is None:
            self._expire_idle()
            state = _OriginState(
                slots=threading.BoundedSemaphore(self.concurrency), delay=self.default_delay
            )
            self._origins[origin] = state
        return state

    def _expire_idle(self) -> None:
        now = self._clock()
        stale = [
            key
            for key, st in self._origins.items()
            if st.users == 0 and now - max(st.last_used, st.next_start) > self.idle_expiry
        ]
        for key in stale:
            for origin in self._origins.pop(key).origins:
                if self._key_of.get(origin) == key:
                    del self._key_of[origin]
                    self._delays.pop(origin, None)

    def _delay_of(self, state: _OriginState) -> float:
        return max([self.default_delay, *(self._delays.get(o, self.default_delay)
                                          for o in state.origins)])

    def _bind(self, origin: Origin, key: Origin) -> _OriginState:
        """The gate ``key`` with ``origin`` attached (its crawl-delay then applies there)."""
        state = self._state(key)
        old = self._key_of.get(origin)
        if old != key and old in self._origins:
            self._origins[old].origins.discard(origin)
        self._key_of[origin] = key
        state.origins.add(origin)
        state.delay = self._delay_of(state)
        return state

    def set_crawl_delay(self, url_or_origin: str | Origin, seconds: float | None) -> float:
        """Apply a robots.txt crawl-delay to an origin; returns the delay now in force.

        The delay is never below ``default_delay`` and never above ``max_delay``;
        ``None`` restores the default. It applies from the end of the last request already
        made (typically the robots.txt request that announced it).
        """
        origin = _as_origin(url_or_origin)
        wanted = self.default_delay if seconds is None else float(seconds)
        effective = min(max(wanted, self.default_delay), self.max_delay)
        with self._lock:
            self._delays[origin] = effective
            state = self._bind(origin, self._key_of.get(origin, origin))
            if state.last_end is not None:
                state.next_start = max(state.next_start, state.last_end + state.delay)
        return effective

    def delay_for(self, url_or_origin: str | Origin) -> float:
        """The delay currently applied to an origin (its gate's, when it shares one)."""
        origin = _as_origin(url_or_origin)
        with self._lock:
            state = self._origins.get(self._key_of.get(origin, origin))
            return state.delay if state else self._delays.get(origin, self.default_delay)

    @contextmanager
    def slot(self, url: str, address: str | None = None) -> Iterator[None]:
        """Hold one of the gate's request slots, waiting first for its delay to pass. The gate
        is the origin's, or with ``address`` (where the request will connect) the gate of
        (scheme, address, port), shared by every hostname on that address."""
        origin = _as_origin(url)
        key = (origin[0], address.lower(), origin[2]) if address else origin
        with self._lock:
            state = self._bind(origin, key)
            state.users += 1
        try:
            state.slots.acquire()
            try:
                with self._lock:
                    now = self._clock()
                    start = max(now, state.next_start)
                    state.next_start = start + state.delay
                wait = start - now
                if wait > 0:
                    self._sleep(wait)
                yield
            finally:
                with self._lock:
                    end = self._clock()
                    state.next_start = max(state.next_start, end + state.delay)
                    state.last_used = state.last_end = end
                state.slots.release()
        finally:
            with self._lock:
                state.users -= 1

    def origins(self) -> list[Origin]:
        """Gate keys currently tracked (origins, or (scheme, address, port); for monitoring
        and tests)."""
        with self._lock:
            return list(self._origins)


def _as_origin(url_or_origin: str | Origin) -> Origin:
    if isinstance(url_or_origin, tuple):
        return url_or_origin
    return origin_of(url_or_origin)
