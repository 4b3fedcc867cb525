"""Per-origin politeness shared by every worker process on every host, kept in Redis.

Same contract as :class:`analysis.politeness.Politeness` (``slot(url)``, ``set_crawl_delay``,
``delay_for``): at most ``concurrency`` requests in flight per origin, and ``delay`` seconds
between the end of one request and the start of the next (and between two starts). The state
lives in the keys below and is changed only by short Lua scripts, so the check and
the reservation are atomic across hosts; times come from Redis's own clock (``TIME``), so the
hosts' clocks do not matter.

- ``<prefix><origin>:flight``: a sorted set of slot tokens, scored by when the slot expires
  (a worker that died holding a slot frees it after ``hold_seconds``);
- ``<prefix><origin>:next``: the earliest start time (ms) for the next request;
- ``<prefix><origin>:delay``: the origin's delay in ms (a robots.txt crawl-delay);
- ``<prefix><origin>:line`` and ``:seen``: who waits for a slot, scored by arrival and by
  last try. Slots go to the longest waiting first, so a worker that asks again right after
  its request never jumps ahead of one already waiting on another host (without the line,
  the holder's next reservation starts before a poller's next try, and one host's crawl ran
  to its end while the other's starved). A waiter that stopped trying for ``STALE_MS``
  leaves the line.

When Redis is unreachable the gate falls back to a per-process :class:`Politeness` and logs
it (at most once per ``LOG_EVERY_SECONDS``); it returns to Redis on the next call that works.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import redis

from analysis.politeness import Origin, Politeness
from analysis.urls import origin_of

log = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 60.0
POLL_SECONDS = 0.05  # wait between two tries while every slot of an origin is taken
STALE_MS = 3000  # a waiter that has not tried for this long has gone (died, or gave up)

# KEYS: flight, next, delay, line, seen. ARGV: token, concurrency, default delay ms, hold ms,
# stale ms. Returns -1 when every free slot goes to an earlier waiter (the caller stays in
# the line), else the ms to wait before starting.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now - tonumber(ARGV[5]))) do
  redis.call('ZREM', KEYS[4], gone)
  redis.call('ZREM', KEYS[5], gone)
end
local free = tonumber(ARGV[2]) - redis.call('ZCARD', KEYS[1])
local ahead = redis.call('ZRANK', KEYS[4], ARGV[1]) or redis.call('ZCARD', KEYS[4])
if ahead >= free then
  redis.call('ZADD', KEYS[4], 'NX', now, ARGV[1])
  redis.call('ZADD', KEYS[5], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[4], ARGV[5])
  redis.call('PEXPIRE', KEYS[5], ARGV[5])
  return -1
end
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
local delay = tonumber(redis.call('GET', KEYS[3]) or ARGV[3])
local nxt = tonumber(redis.call('GET', KEYS[2]) or 0)
local start = math.max(now, nxt)
local keep = start - now + tonumber(ARGV[4]) + delay
redis.call('SET', KEYS[2], start + delay, 'PX', keep)
redis.call('ZADD', KEYS[1], start + tonumber(ARGV[4]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], keep)
return start - now
"""

# KEYS: flight, next, delay. ARGV: token, default delay ms. The next start is at least the
# end of this request plus the delay.
_RELEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[1], ARGV[1])
local delay = tonumber(redis.call('GET', KEYS[3]) or ARGV[2])
local nxt = math.max(tonumber(redis.call('GET', KEYS[2]) or 0), now + delay)
if nxt > now then redis.call('SET', KEYS[2], nxt, 'PX', nxt - now + 1000) end
return nxt - now
"""

# KEYS: next, delay. ARGV: delay ms, ttl ms. A new delay applies from the last end.
_SET_DELAY = """
local old = tonumber(redis.call('GET', KEYS[2]) or ARGV[3])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
local nxt = tonumber(redis.call('GET', KEYS[1]) or 0)
if nxt > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  nxt = nxt - old + tonumber(ARGV[1])
  if nxt > now then redis.call('SET', KEYS[1], nxt, 'PX', nxt - now + 1000) end
end
return 1
"""


class _GateKeys(NamedTuple):
    """The Redis keys of one gate, in the order the scripts take them (see module doc)."""

    flight: str
    next: str
    delay: str
    line: str
    seen: str


class RedisGate:
    """``with gate.slot(url): <one HTTP request>``, shared through Redis."""

    def __init__(
        self,
        url: str,
        *,
        concurrency: int = 1,
        default_delay: float = 1.0,
        max_delay: float = 10.0,
        hold_seconds: float = 120.0,
        prefix: str = "rivalscope:gate:",
        delay_ttl_seconds: float = 3600.0,
        client: redis.Redis | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self.default_delay = max(0.0, default_delay)
        self.max_delay = max(self.default_delay, max_delay)
        self.hold_ms = int(hold_seconds * 1000)
        self.delay_ttl_ms = int(delay_ttl_seconds * 1000)
        self.prefix = prefix
        self.client = client or redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=25)
        self.fallback = Politeness(concurrency=concurrency, default_delay=default_delay,
                                   max_delay=max_delay)
        # Threads of this process queue for a gate here first, so they wake as soon as a
        # slot frees instead of polling Redis; the Redis scripts then rule between processes.
        self._local: weakref.WeakValueDictionary[_GateKeys, threading.Semaphore] = (
            weakref.WeakValueDictionary())
        self._local_lock = threading.Lock()
        self._acquire = self.client.register_script(_ACQUIRE)
        self._release = self.client.register_script(_RELEASE)
        self._set_delay = self.client.register_script(_SET_DELAY)
        self._last_log = 0.0

    def _keys(self, origin: Origin, address: str | None = None) -> _GateKeys:
        """(in flight, next start, delay, waiting line, last tries). With ``address`` (where
        the request connects), the slots, the next start and the line belong to (scheme,
        address, port), shared by every hostname on that server; the delay stays the
        origin's (its robots.txt)."""
        scheme, host, port = origin
        base = f"{self.prefix}{scheme}://{host}:{port}"
        gate = f"{self.prefix}{scheme}://{address.lower()}:{port}" if address else base
        return _GateKeys(f"{gate}:flight", f"{gate}:next", f"{base}:delay", f"{gate}:line",
                         f"{gate}:seen")

    def _redis_down(self, error: Exception, what: str) -> None:
        now = time.monotonic()
        if now - self._last_log >= LOG_EVERY_SECONDS or self._last_log == 0.0:
            self._last_log = now
            log.warning("politeness gate: Redis unreachable (%s: %s); %s uses the "
                        "per-process gate", type(error).__name__, error, what)

    def set_crawl_delay(self, url_or_origin: str | Origin, seconds: float | None) -> float:
        """Apply a robots.txt crawl-delay to an origin, for every host; the delay in force."""
        origin = _as_origin(url_or_origin)
        effective = self.fallback.set_crawl_delay(origin, seconds)
        keys = self._keys(origin)
        try:
            self._set_delay(keys=[keys.next, keys.delay],
                            args=[int(effective * 1000), self.delay_ttl_ms,
                                  int(self.default_delay * 1000)])
        except redis.RedisError as error:
            self._redis_down(error, "the crawl-delay")
        return effective

    def delay_for(self, url_or_origin: str | Origin) -> float:
        """The delay currently applied to an origin."""
        origin = _as_origin(url_or_origin)
        try:
            value = self.client.get(self._keys(origin).delay)
        except redis.RedisError:
            return self.fallback.delay_for(origin)
        return int(value) / 1000 if value is not None else self.default_delay

    @contextmanager
    def slot(self, url: str, address: str | None = None) -> Iterator[None]:
        """Hold one of the gate's slots (in Redis), waiting first for its delay to pass: the
        origin's gate, or with ``address`` the server's (see ``_keys``)."""
        origin = _as_origin(url)
        keys = self._keys(origin, address)
        with self._local_lock:
            local = self._local.get(keys)
            if local is None:
                local = self._local[keys] = threading.BoundedSemaphore(self.concurrency)
        with local:
            with self._redis_slot(url, address, origin, keys):
                yield

    @contextmanager
    def _redis_slot(self, url: str, address: str | None, origin: Origin,
                    keys: _GateKeys) -> Iterator[None]:
        token = uuid.uuid4().hex
        try:
            wait_ms = self._reserve(keys, token)
        except redis.RedisError as error:
            self._redis_down(error, f"{origin[1]}:{origin[2]}")
            with self.fallback.slot(url, address):
                yield
            return
        if wait_ms > 0:
            time.sleep(wait_ms / 1000)
        try:
            yield
        finally:
            try:
                self._release(keys=[keys.flight, keys.next, keys.delay],
                              args=[token, int(self.default_delay * 1000)])
            except redis.RedisError as error:  # the slot expires after hold_seconds
                self._redis_down(error, "releasing a slot")

    def _reserve(self, keys: _GateKeys, token: str) -> int:
        try:
            while True:
                wait_ms = int(self._acquire(keys=list(keys), args=[
                    token, self.concurrency, int(self.default_delay * 1000), self.hold_ms,
                    STALE_MS]))
                if wait_ms >= 0:
                    return wait_ms
                time.sleep(POLL_SECONDS)
        except redis.RedisError:
            raise  # Redis is away: the line forgets this waiter after STALE_MS
        except BaseException:
            self._leave_line(keys, token)
            raise

    def _leave_line(self, keys: _GateKeys, token: str) -> None:
        """Best effort, for a waiter that stops waiting (time limit, shutdown): leave the
        line now rather than hold it up for ``STALE_MS``."""
        try:
            self.client.pipeline().zrem(keys.line, token).zrem(keys.seen, token).execute()
        except redis.RedisError:
            pass


def _as_origin(url_or_origin: str | Origin) -> Origin:
    if isinstance(url_or_origin, tuple):
        return url_or_origin
    return origin_of(url_or_origin)
