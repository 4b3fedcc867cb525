"""The embedded broker (kombu's filesystem transport, made safe) and broker readiness.

kombu's filesystem transport writes a message file in place while consumers list the same
folder, so a consumer can read a file that is still empty and die with ``JSONDecodeError``
(celery/kombu#1551). ``Channel`` here changes four things and nothing else:

- **Atomic writes.** A message is written to a hidden temporary file in the queue folder,
  flushed and fsynced, then renamed to its final name (``os.replace``): a consumer sees the
  whole file or nothing. Exchange tables (``control/*.exchange``) are replaced the same way.
- **Atomic claims.** A consumer takes a message by renaming it into ``claimed/`` (same
  filesystem, so exactly one consumer wins), then reads it there.
- **Quarantine.** A message file that is empty or cannot be decoded is moved to
  ``quarantine/`` and logged; the consumer goes on with the next message. Never fatal.
- **No messages for nobody.** Event and broadcast messages (``celeryev``, ``celery.pidbox``)
  are written only for queues that a live process consumes. A consumer holds an exclusive
  ``flock`` on ``control/consumers/<queue>.lock`` for as long as it consumes; the kernel
  drops it when the process dies, so a dead Flower's ``celeryev.*`` queue stops receiving
  at once. ``prune`` (run by the cleanup maintenance task) removes dead bindings, their
  leftover messages, expired messages, stale temporary files, and puts back messages
  claimed by a process that died before reading them.

The transport is selected with ``broker_transport = "utils.broker:Transport"`` and the URL
``filesystem://localhost/``: with a host, kombu never warns "No hostname was supplied"
(issue 10 §6), neither here nor where Celery parses the URL with a stock ``Connection``.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import tempfile
import threading
import time
import uuid
from contextlib import suppress
from pathlib import Path
from queue import Empty
from typing import Any
from urllib.parse import quote

from celery import Celery
from kombu.transport import filesystem
from kombu.utils.json import dumps, loads

log = logging.getLogger(__name__)

TRANSPORT = "utils.broker:Transport"
# With a host, so nothing that parses the URL alone (``celery inspect conf`` masks it with a
# stock ``Connection``) makes kombu warn "No hostname was supplied".
BROKER_URL = "filesystem://localhost/"
TEMP_PREFIX = ".tmp-"
# Exchanges whose messages only matter to a process consuming right now.
EPHEMERAL_EXCHANGES = ("celeryev", "celery.pidbox")
# Reply queues are consumed only after the request is published; pruned, never filtered.
REPLY_EXCHANGES = ("reply.celery.pidbox",)
STALE_SECONDS = 60.0


def folder_options(folder: Path) -> dict[str, Any]:
    """Transport options for the embedded broker rooted at ``folder`` (folders created)."""
    paths = {name: folder / name for name in
             ("queue", "processed", "claimed", "quarantine", "control")}
    for path in paths.values():
        path.mkdir(parents=True, exist_ok=True)
    (paths["control"] / "consumers").mkdir(exist_ok=True)
    trace = {"trace_file": str(folder / "trace.log")} if os.environ.get("BROKER_TRACE") else {}
    return {**trace,
        "data_folder_in": str(paths["queue"]),
        "data_folder_out": str(paths["queue"]),
        "processed_folder": str(paths["processed"]),
        "store_processed": False,
        "control_folder": str(paths["control"]),
        "claimed_folder": str(paths["claimed"]),
        "quarantine_folder": str(paths["quarantine"]),
    }


def write_atomic(path: Path | str, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` so readers see all of it or none: temp file, rename."""
    folder = os.path.dirname(os.fspath(path)) or "."
    handle, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            if fsync:
                os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def _lock_name(queue: str) -> str:
    return quote(queue, safe="@.-_") + ".lock"


def consumer_alive(control_folder: Path | str, queue: str) -> bool:
    """Does a live process hold the consumer lock of ``queue``? (It cannot be taken.)"""
    path = Path(control_folder) / "consumers" / _lock_name(queue)
    try:
        handle = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return True
        raise
    finally:
        os.close(handle)  # closing drops a probe lock, if we got it
    return False


def _decode(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise ValueError("empty message file")
    payload = loads(raw.decode("utf-8"))
    if not isinstance(payload, dict) or "body" not in payload:
        raise ValueError("not a kombu message")
    return payload


def quarantine(path: str, folder: str, reason: str) -> str:
    """Move an unreadable message file aside and log it; returns the new path."""
    target = os.path.join(folder, f"{int(time.time())}-{os.path.basename(path)}")
    try:
        os.replace(path, target)
    except OSError:
        log.warning("broker: could not quarantine %s (%s)", path, reason, exc_info=True)
        return path
    log.warning("broker: quarantined unreadable message %s: %s", os.path.basename(path), reason)
    return target


class Channel(filesystem.Channel):
    """kombu's filesystem channel with atomic writes, claims, quarantine and consumer locks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._consumer_locks: dict[str, int] = {}
        self._locks_guard = threading.Lock()
        super().__init__(*args, **kwargs)

    # --- folders -----------------------------------------------------------------------
    def _folder(self, key: str, name: str) -> str:
        value = self.transport_options.get(key)
        if value:
            return value
        path = os.path.join(os.path.dirname(os.path.abspath(self.data_folder_in)), name)
        os.makedirs(path, exist_ok=True)
        return path

    @property
    def claimed_folder(self) -> str:
        return self._folder("claimed_folder", "claimed")

    @property
    def quarantine_folder(self) -> str:
        return self._folder("quarantine_folder", "quarantine")

    # --- producing ---------------------------------------------------------------------
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        name = f"{int(round(time.monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        try:
            write_atomic(os.path.join(self.data_folder_out, name),
                         dumps(payload).encode("utf-8"))
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add message {name!r} to {queue}") from exc
        self._trace("put", queue, payload)

    def _trace(self, action: str, queue: str, payload: dict[str, Any]) -> None:
        """With ``BROKER_TRACE`` set: one line per task message sent or taken (drills)."""
        path = self.transport_options.get("trace_file")
        headers = (payload.get("headers") or {}) if isinstance(payload, dict) else {}
        if not path or "task" not in headers:
            return
        line = f"{action} {queue} {headers.get('id')} {headers.get('task')} {os.getpid()}\n"
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(handle, line.encode())  # one small O_APPEND write: never interleaved
        finally:
            os.close(handle)

    def _live(self, queues: list[str]) -> list[str]:
        return [queue for queue in queues if consumer_alive(self.control_folder, queue)]

    def _lookup(self, exchange: str, routing_key: str, default: Any = None) -> list[str]:
        queues = super()._lookup(exchange, routing_key, default)
        return self._live(queues) if exchange in EPHEMERAL_EXCHANGES else queues

    def _put_fanout(self, exchange: str, payload: Any, routing_key: str, **kwargs: Any) -> None:
        queues = [binding.queue for binding in self.get_table(exchange)]
        if exchange in EPHEMERAL_EXCHANGES:
            queues = self._live(queues)
        for queue in queues:
            self._put(queue, payload, **kwargs)

    # --- consuming ---------------------------------------------------------------------
    def _get(self, queue: str) -> dict[str, Any]:
        self._hold_consumer_lock(queue)
        wanted = f"{queue}.msg"
        for filename in sorted(os.listdir(self.data_folder_in)):
            if filename.startswith(TEMP_PREFIX) or filename.partition(".")[2] != wanted:
                continue
            claimed = os.path.join(self.claimed_folder, filename)
            try:
                os.rename(os.path.join(self.data_folder_in, filename), claimed)
            except FileNotFoundError:
                continue  # another consumer took it
            try:
                with open(claimed, "rb") as stream:
                    raw = stream.read()
            except OSError as exc:
                raise filesystem.ChannelError(f"Cannot read message {filename!r}") from exc
            try:
                payload = _decode(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                quarantine(claimed, self.quarantine_folder, f"{type(exc).__name__}: {exc}")
                continue
            if self.store_processed:
                os.replace(claimed, os.path.join(self.processed_folder, filename))
            else:
                os.unlink(claimed)
            self._trace("get", queue, payload)
            return payload
        raise Empty()

    def _hold_consumer_lock(self, queue: str) -> None:
        """Take (once) the exclusive lock that tells producers this queue is consumed."""
        if queue in self._consumer_locks:
            return
        with self._locks_guard:
            if queue in self._consumer_locks:
                return
            folder = self.control_folder / "consumers"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / _lock_name(queue)
            for _attempt in range(3):
                handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(handle)  # another live consumer holds it: the queue is live
                    return
                try:
                    same = os.stat(path).st_ino == os.fstat(handle).st_ino
                except FileNotFoundError:
                    same = False
                if same:  # not removed by ``prune`` between our open and our lock
                    self._consumer_locks[queue] = handle
                    return
                os.close(handle)

    def _release_consumer_lock(self, queue: str) -> None:
        with self._locks_guard:
            handle = self._consumer_locks.pop(queue, None)
        if handle is not None:
            os.close(handle)

    def basic_consume(self, queue: str, no_ack: bool, callback: Any, consumer_tag: str,
                      **kwargs: Any) -> Any:
        result = super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)
        self._hold_consumer_lock(queue)
        return result

    def basic_cancel(self, consumer_tag: str) -> Any:
        queue = self._tag_to_queue.get(consumer_tag)
        result = super().basic_cancel(consumer_tag)
        if queue is not None and queue not in self._active_queues:
            self._release_consumer_lock(queue)
        return result

    def close(self) -> None:
        try:
            super().close()
        finally:
            for queue in list(self._consumer_locks):
                self._release_consumer_lock(queue)

    # --- exchange tables ---------------------------------------------------------------
    def get_table(self, exchange: str) -> list[Any]:
        file = self._exchange_file(exchange)
        try:
            raw = file.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot open {file}") from exc
        try:
            return [filesystem.exchange_queue_t(*row) for row in loads(raw.decode("utf-8"))]
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            log.warning("broker: unreadable exchange table %s (%s); treated as empty",
                        file.name, exc)
            return []

    def _edit_table(self, exchange: str, edit: Any) -> None:
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(exist_ok=True)
        with open(f"{file}.lock", "a+b") as guard:
            fcntl.flock(guard.fileno(), fcntl.LOCK_EX)
            rows = self.get_table(exchange)
            changed = edit(rows)
            if changed is not None:
                write_atomic(file, dumps(changed).encode("utf-8"), fsync=False)

    def queue_bind(self, queue: str, exchange: str | None = None, routing_key: str = "",
                   arguments: Any = None, **kwargs: Any) -> None:
        """Bind; when this process already knows the binding, make sure the table on disk
        still has it (another folder, or a table that was lost, must not drop messages)."""
        exchange = exchange or "amq.direct"
        if self.state.has_binding(queue, exchange, routing_key):
            meta = self.typeof(exchange).prepare_bind(queue, exchange, routing_key, arguments)
            self._queue_bind(exchange, *meta)
            return
        super().queue_bind(queue, exchange, routing_key, arguments, **kwargs)

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        value = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        self._edit_table(exchange, lambda rows: None if value in rows else [value, *rows])

    def _delete(self, queue: str, exchange: str, routing_key: str, pattern: str,
                *args: Any, **kwargs: Any) -> None:
        filesystem.virtual.Channel._delete(self, queue, exchange, routing_key, pattern,
                                           *args, **kwargs)
        value = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        self._edit_table(exchange, lambda rows: [r for r in rows if r != value]
                         if value in rows else None)


class Transport(filesystem.Transport):
    """The filesystem transport with ``Channel`` above; no hostname, no warning about it."""

    Channel = Channel
    global_state = filesystem.virtual.BrokerState()

    @property
    def default_connection_params(self) -> dict[str, Any]:
        return {"port": None, "hostname": None}


def broker_settings(folder: Path) -> dict[str, Any]:
    """Celery settings for the embedded broker (``filesystem://``)."""
    return {"broker_url": BROKER_URL, "broker_transport": TRANSPORT,
            "broker_transport_options": folder_options(folder)}


# --- maintenance ---------------------------------------------------------------------------
def _expired(payload: dict[str, Any], mtime: float, now: float) -> bool:
    expiration = (payload.get("properties") or {}).get("expiration")
    headers = payload.get("headers") or {}
    try:
        if expiration is not None and mtime + float(expiration) / 1000.0 < now:
            return True
    except (TypeError, ValueError):
        pass
    expires = headers.get("expires")  # a Celery task's own expiry (ISO 8601)
    if isinstance(expires, str):
        from datetime import datetime

        try:
            return datetime.fromisoformat(expires).timestamp() < now
        except ValueError:
            return False
    return False


def prune(options: dict[str, Any], *, stale_seconds: float = STALE_SECONDS,
          now: float | None = None) -> dict[str, int]:
    """Clean the embedded broker's folders; returns what was done (counts).

    Unbinds queues of event, broadcast and reply exchanges that no live process consumes
    (and deletes their messages), deletes expired messages, deletes temporary files older
    than ``stale_seconds``, and puts claimed files older than that back into the queue (the
    process that claimed them died before reading them)."""
    now = time.time() if now is None else now
    queue_folder = options["data_folder_in"]
    control = Path(options["control_folder"])
    claimed_folder = options.get("claimed_folder") or ""
    done = {"unbound": 0, "orphaned": 0, "expired": 0, "temp_files": 0, "restored": 0,
            "quarantined": 0, "lock_files": 0}
    dead: set[str] = set()
    for exchange in EPHEMERAL_EXCHANGES + REPLY_EXCHANGES:
        file = control / f"{exchange}.exchange"
        if not file.exists():
            continue
        with open(f"{file}.lock", "a+b") as guard:
            fcntl.flock(guard.fileno(), fcntl.LOCK_EX)
            try:
                rows = json.loads(file.read_bytes() or b"[]")
            except (ValueError, OSError):
                rows = []
            keep = []
            for row in rows:
                queue = row[2] if len(row) > 2 else ""
                if consumer_alive(control, queue) or not _old(file, now, stale_seconds):
                    keep.append(row)
                else:
                    dead.add(queue)
            if len(keep) != len(rows):
                write_atomic(file, json.dumps(keep).encode(), fsync=False)
                done["unbound"] += len(rows) - len(keep)
    for name in os.listdir(queue_folder):
        path = os.path.join(queue_folder, name)
        if name.startswith(TEMP_PREFIX):
            if _old(path, now, stale_seconds):
                with suppress(FileNotFoundError):
                    os.unlink(path)
                    done["temp_files"] += 1
            continue
        queue = name.partition(".")[2].removesuffix(".msg")
        if queue in dead:
            with suppress(FileNotFoundError):
                os.unlink(path)
                done["orphaned"] += 1
            continue
        try:
            mtime = os.stat(path).st_mtime
            with open(path, "rb") as stream:
                payload = _decode(stream.read())
        except FileNotFoundError:
            continue
        except (ValueError, UnicodeDecodeError) as exc:
            if claimed_folder and _old(path, now, stale_seconds):
                quarantine(path, options.get("quarantine_folder") or claimed_folder, str(exc))
                done["quarantined"] += 1
            continue
        if _expired(payload, mtime, now):
            with suppress(FileNotFoundError):
                os.unlink(path)
                done["expired"] += 1
    consumers = control / "consumers"
    for name in os.listdir(consumers) if consumers.is_dir() else []:
        path = consumers / name
        if _old(path, now, stale_seconds):
            _remove_free_lock(path, done)
    if claimed_folder and os.path.isdir(claimed_folder):
        for name in os.listdir(claimed_folder):
            path = os.path.join(claimed_folder, name)
            if _old(path, now, stale_seconds):
                with suppress(FileNotFoundError):
                    os.replace(path, os.path.join(queue_folder, name))
                    done["restored"] += 1
    return done


def _remove_free_lock(path: Path, done: dict[str, int]) -> None:
    """Delete a consumer lock file nobody holds (a consumer re-checks the inode it locked)."""
    try:
        handle = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(handle)
        return  # held: a live consumer
    try:
        os.unlink(path)
        done["lock_files"] += 1
    except FileNotFoundError:
        pass
    finally:
        os.close(handle)


def _old(path: Path | str, now: float, seconds: float) -> bool:
    try:
        return os.stat(path).st_mtime < now - seconds
    except FileNotFoundError:
        return False


def folder_usage(options: dict[str, Any]) -> dict[str, int]:
    """Files and bytes under the embedded broker's folders (for soaks and admin pages)."""
    root = Path(options["data_folder_in"]).parent
    files = size = 0
    for path in root.rglob("*"):
        if path.is_file():
            files += 1
            size += path.stat().st_size
    return {"files": files, "bytes": size}


def prune_celery_broker(celery: Celery) -> dict[str, int] | None:
    """``prune`` for this Celery app's broker, or None when it is not the embedded one."""
    if not str(celery.conf.broker_url).startswith("filesystem"):
        return None
    return prune(dict(celery.conf.broker_transport_options or {}))


# --- readiness -----------------------------------------------------------------------------
def check_broker(celery: Celery, timeout: float = 2.0) -> dict[str, Any]:
    """ok, latency and the error; the filesystem transport checks its folders."""
    started = time.perf_counter()
    options = celery.conf.broker_transport_options or {}
    try:
        if str(celery.conf.broker_url).startswith("filesystem"):
            folder = options.get("data_folder_in", "")
            if not folder or not os.access(folder, os.W_OK):
                raise OSError(f"broker folder {folder!r} is not writable")
        else:
            with celery.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=timeout)
                connection.default_channel  # noqa: B018 - opens the channel
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return {"ok": False, "error": str(exc)[:300] or type(exc).__name__,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
