"""Beat runs once, whatever the number of beat processes: a lock in Redis names the active
scheduler; the others stand by and take over when it dies.

The lock is a Redis key with a TTL (``BEAT_LOCK_SECONDS``, redis-py's :class:`redis.lock.Lock`,
token-checked): the active beat renews it at least every third of the TTL; a standby tries to
take it about once a second. A beat that cannot renew (Redis unreachable, or the lock taken)
stops sending at once. Takeover after a crash takes at most TTL + 1 s; after a clean stop
(the lock is released) about 1 s. With the filesystem broker (one machine) there is no lock.

Use: ``beat_scheduler = "utils.beat_lock:LockedPersistentScheduler"``, or mix
:class:`BeatLockMixin` in front of any other Scheduler class
(``class S(BeatLockMixin, OtherScheduler)``); ``acquire_beat_lock(scheduler)`` is the one
call a hook needs.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from typing import Any

import redis
from celery.beat import PersistentScheduler

from utils.beat_schedule import SafeScheduler

log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 30.0
RETRY_SECONDS = 1.0


class BeatLock:
    """One beat's view of the lock: ``hold()`` is True while this beat is the active one."""

    def __init__(self, url: str, *, name: str = "rivalscope:beat-lock",
                 ttl: float = DEFAULT_TTL_SECONDS, client: redis.Redis | None = None) -> None:
        self.ttl = ttl
        self.name = name
        self.client = client or redis.Redis.from_url(url, socket_connect_timeout=2,
                                                     socket_timeout=3)
        self.lock = self.client.lock(name, timeout=ttl, blocking=False, thread_local=False,
                                     raise_on_release_error=False)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.held = False
        self._told_standby = False

    @property
    def renew_seconds(self) -> float:
        return self.ttl / 3

    def hold(self) -> bool:
        """Renew the lock if held, else try to take it; False means: send nothing."""
        try:
            if self.held:
                self.lock.reacquire()
                return True
            if self.lock.acquire(token=self.token):
                self.held = True
                self._told_standby = False
                log.warning("beat lock %s acquired by %s: this beat is the active scheduler",
                            self.name, self.token)
                return True
        except redis.exceptions.LockError:
            self._lost("taken by another scheduler")
            return False
        except redis.RedisError as error:
            self._lost(f"Redis unreachable: {type(error).__name__}: {error}")
            return False
        if not self._told_standby:
            self._told_standby = True
            log.warning("beat lock %s is held by %s: this beat (%s) stands by", self.name,
                        self._holder(), self.token)
        return False

    def _lost(self, why: str) -> None:
        if self.held:
            log.warning("beat lock %s lost by %s (%s): standing by", self.name, self.token, why)
        self.held = False
        self.lock.local.token = None

    def _holder(self) -> str:
        try:
            value = self.client.get(self.name)
        except redis.RedisError:
            return "?"
        return value.decode() if value else "nobody"

    def release(self) -> None:
        """Give the lock up (a clean stop): a standby takes over within a second."""
        if self.held:
            self.held = False
            try:
                self.lock.release()
                log.warning("beat lock %s released by %s", self.name, self.token)
            except redis.RedisError:
                pass


def beat_lock_for(app: Any) -> BeatLock | None:
    """The lock for this Celery app's beat: in the broker's Redis; None on other brokers."""
    url = str(app.conf.broker_url or "")
    if not url.startswith(("redis://", "rediss://")):
        return None
    flask_config = getattr(getattr(app, "flask_app", None), "config", {})
    ttl = float(flask_config.get("BEAT_LOCK_SECONDS")
                or os.environ.get("BEAT_LOCK_SECONDS") or DEFAULT_TTL_SECONDS)
    queue = app.conf.task_default_queue or "celery"
    return BeatLock(url, name=f"rivalscope:beat-lock:{queue}", ttl=ttl)


def acquire_beat_lock(scheduler: Any) -> bool:
    """True when this scheduler may send (it holds the lock, or there is no lock to hold).
    Keeps the lock on the scheduler (``scheduler.beat_lock``), created on first call."""
    if not hasattr(scheduler, "beat_lock"):
        scheduler.beat_lock = beat_lock_for(scheduler.app)
    lock = scheduler.beat_lock
    return True if lock is None else lock.hold()


class BeatLockMixin:
    """Put in front of a Scheduler class: ``tick`` sends only while holding the lock."""

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not acquire_beat_lock(self):
            return min(RETRY_SECONDS, self.max_interval)  # type: ignore[attr-defined]
        interval = super().tick(*args, **kwargs)  # type: ignore[misc]
        lock = self.beat_lock
        return interval if lock is None else min(interval, lock.renew_seconds)

    def close(self) -> None:
        super().close()  # type: ignore[misc]
        lock = getattr(self, "beat_lock", None)
        if lock is not None:
            lock.release()


class LockedPersistentScheduler(BeatLockMixin, PersistentScheduler):
    """Celery's default scheduler (schedule file), active only while holding the lock."""


class LockedSafeScheduler(BeatLockMixin, SafeScheduler):
    """The project's beat scheduler: a schedule file that any state of it cannot break
    (``utils.beat_schedule``), active only while holding the lock."""
