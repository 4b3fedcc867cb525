"""Analyse one page under a hard time budget, in a child process that is killed on overrun.

A crafted page can make the HTML parser run for minutes (see :mod:`analysis.parse_budget`),
and a thread cannot be stopped from outside. So the analysis of each page runs in a small
pool of child processes: the body goes down a pipe, a compact dict of facts comes back. A
child that does not answer within the budget (wall clock, which bounds its CPU time too) is
killed with SIGKILL and replaced, and the caller gets :class:`ParseBudgetExceeded`.

- Children run only pure functions (``analysis.html_facts.analyze_page`` by default) and never
  touch a database. Each is a fresh interpreter (``sys.executable -c ...``, talking over a
  socket pair), never a fork of the caller: no inherited connections, pools or locks, no
  re-run of ``__main__``, and prefork or threaded workers may own a pool alike.
- :meth:`PagePool.close` with ``abort=True`` (a worker's warm shutdown) kills analyses in
  progress: their callers get :class:`AnalysisAborted` at once. A caller may also pass
  ``should_abort``, polled while it waits.
- One process-wide default pool serves :func:`analyse_page_budgeted`; a process that forks
  drops it in the child (the child builds its own on first use).
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger(__name__)

BUDGET_CODE = "parse_budget_exceeded"
DEFAULT_BUDGET_SECONDS = 10.0
DEFAULT_MAX_CHILDREN = 4
DEFAULT_MEMORY_LIMIT_MB = 1024
DEFAULT_TARGET = "analysis.html_facts:analyze_page"
POLL_SECONDS = 0.05

Headers = list[tuple[str, str]]


class ParseBudgetExceeded(Exception):
    """The analysis of one page went over its time budget; its child was killed."""

    code = BUDGET_CODE

    def __init__(self, seconds: float) -> None:
        super().__init__(f"{BUDGET_CODE}: page analysis took over {seconds:g} s")
        self.seconds = seconds


class AnalysisAborted(Exception):
    """The analysis was stopped from outside (pool closed for shutdown, or ``should_abort``)."""


class AnalysisCrashed(Exception):
    """The child died while analysing (out of memory, a crash in the parser)."""


class AnalysisError(Exception):
    """The analysis function raised in the child; ``kind`` is the exception's class name."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


# -- the child ------------------------------------------------------------------------------


def _resolve(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _die_with_parent(parent_pid: int) -> None:
    """Linux: SIGKILL this child when its parent dies (a killed worker leaves no analysis
    running); elsewhere the child still exits at EOF once its analysis ends."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)


def _child_main(conn: Connection, memory_limit_bytes: int, target: str) -> None:
    """Serve (body, final_url, headers) -> ("ok", facts) | ("error", kind, message) until EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the worker's to handle
    if memory_limit_bytes > 0:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_limit_bytes, memory_limit_bytes))
    func = _resolve(target)
    while True:
        try:
            body, final_url, headers = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple = ("ok", func(body, final_url, headers))
        except MemoryError:
            reply = ("error", "MemoryError", "out of memory")
        except Exception as exc:  # noqa: BLE001 - reported to the caller, the child lives on
            reply = ("error", type(exc).__name__, str(exc)[:300])
        del body
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return


# -- the pool -------------------------------------------------------------------------------

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_BOOT = "import sys; from analysis.page_budget import child_entry; child_entry(sys.argv[1:])"
_CHILD_ENV = frozenset({"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "LC_CTYPE",
                        "PYTHONHASHSEED", "PYTHONIOENCODING", "PYTHONUTF8"})


def child_entry(argv: list[str]) -> None:
    """Entry point of a child interpreter: ``FD MEMORY_LIMIT_BYTES TARGET PARENT_PID``."""
    fd, memory_limit_bytes, target, parent = int(argv[0]), int(argv[1]), argv[2], int(argv[3])
    _die_with_parent(parent)
    _child_main(Connection(fd), memory_limit_bytes, target)


_SPAWNER: ThreadPoolExecutor | None = None
_SPAWNER_LOCK = threading.Lock()


def _spawn(argv: list[str], **options: Any) -> subprocess.Popen:
    """Popen from one long-lived thread: Linux's parent-death signal follows the thread that
    forked, so children must not be started by a thread that may end before the process."""
    global _SPAWNER
    with _SPAWNER_LOCK:
        if _SPAWNER is None:
            _SPAWNER = ThreadPoolExecutor(1, thread_name_prefix="page-analysis-spawner")
        spawner = _SPAWNER
    return spawner.submit(subprocess.Popen, argv, **options).result()


class _Child:
    """One analysis process (a fresh interpreter, never a fork of ours) and our end of its
    socket."""

    def __init__(self, memory_limit_bytes: int, target: str) -> None:
        ours, theirs = socket.socketpair()
        # The child parses hostile input: it gets no secrets (database URL, keys) in its env.
        env = {key: value for key, value in os.environ.items() if key in _CHILD_ENV}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_ROOT, os.environ.get("PYTHONPATH")) if p)
        try:
            self.process = _spawn(
                [sys.executable, "-c", _BOOT, str(theirs.fileno()), str(memory_limit_bytes),
                 target, str(os.getpid())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, cwd=_ROOT, env=env)
        finally:
            theirs.close()
        self.pid = self.process.pid
        self.conn = Connection(ours.detach())

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal_kill(self) -> None:
        """SIGKILL without waiting (signal-handler safe)."""
        try:
            self.process.kill()
        except OSError:
            pass

    def kill(self) -> None:
        """SIGKILL, reap and close (safe to call twice)."""
        self.signal_kill()
        try:
            self.process.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.conn.close()


class PagePool:
    """A few analysis children shared by the threads of one process (see module docstring)."""

    def __init__(self, budget_seconds: float = DEFAULT_BUDGET_SECONDS,
                 max_children: int = DEFAULT_MAX_CHILDREN,
                 memory_limit_mb: int = DEFAULT_MEMORY_LIMIT_MB,
                 target: str = DEFAULT_TARGET) -> None:
        self.budget_seconds = float(budget_seconds)
        self.max_children = max(1, int(max_children))
        self.memory_limit_bytes = max(0, int(memory_limit_mb)) * 1024 * 1024
        self.target = target
        self.pid = os.getpid()
        self.killed = 0  # children killed for going over budget
        self._cond = threading.Condition()
        self._idle: list[_Child] = []
        self._busy: set[_Child] = set()
        self._starting = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def analyse(self, body: bytes, final_url: str, headers: Headers, *,
                should_abort: Callable[[], bool] | None = None) -> dict:
        """The facts of one page, or ParseBudgetExceeded / AnalysisAborted / AnalysisCrashed /
        AnalysisError. The budget starts when the page is handed to a child."""
        child = self._acquire(should_abort)
        healthy = False
        try:
            reply = self._exchange(child, (bytes(body), final_url, list(headers)), should_abort)
            healthy = True
        finally:
            self._release(child, healthy)
        if reply[0] == "ok":
            return reply[1]
        raise AnalysisError(reply[1], reply[2])

    def _exchange(self, child: _Child, message: tuple, should_abort: Callable[[], bool] | None
                  ) -> tuple:
        deadline = time.monotonic() + self.budget_seconds
        try:
            child.conn.send(message)
            while not child.conn.poll(max(0.0, min(POLL_SECONDS, deadline - time.monotonic()))):
                if self._closed or (should_abort is not None and should_abort()):
                    raise AnalysisAborted("analysis stopped")
                if time.monotonic() >= deadline:
                    self.killed += 1
                    log.warning("page analysis over its %g s budget: child %s killed",
                                self.budget_seconds, child.pid)
                    raise ParseBudgetExceeded(self.budget_seconds)
            return child.conn.recv()
        except (EOFError, OSError) as exc:
            if self._closed:
                raise AnalysisAborted("analysis stopped") from None
            raise AnalysisCrashed(f"analysis process died ({type(exc).__name__})") from None

    def prestart(self) -> int:
        """Start children until the pool holds ``max_children`` (a worker calls it once at
        start, so its first pages wait on no interpreter starting); returns how many started."""
        started = 0
        while True:
            with self._cond:
                if self._closed or (len(self._idle) + len(self._busy) + self._starting
                                    >= self.max_children):
                    return started
                self._starting += 1
            child = self._start_counted_child()
            with self._cond:
                self._starting -= 1
                keep = not self._closed
                if keep:
                    self._idle.append(child)
                    self._cond.notify()
            if not keep:
                child.kill()
                return started
            started += 1

    def _start_counted_child(self) -> _Child:
        """A new child for a slot the caller counted in ``_starting`` (freed if it fails; on
        success the caller frees it in the same locked step that files the child)."""
        try:
            return _Child(self.memory_limit_bytes, self.target)
        except BaseException:
            with self._cond:
                self._starting -= 1
            raise

    def _acquire(self, should_abort: Callable[[], bool] | None) -> _Child:
        with self._cond:
            while True:
                if self._closed or (should_abort is not None and should_abort()):
                    raise AnalysisAborted("analysis stopped")
                while self._idle:
                    child = self._idle.pop()
                    if child.alive():
                        self._busy.add(child)
                        return child
                    child.kill()
                if len(self._busy) + self._starting < self.max_children:
                    self._starting += 1
                    break
                self._cond.wait(0.5)
        child = self._start_counted_child()
        with self._cond:
            self._starting -= 1
            if not self._closed:
                self._busy.add(child)
                return child
        child.kill()
        raise AnalysisAborted("analysis stopped")

    def _release(self, child: _Child, healthy: bool) -> None:
        with self._cond:
            self._busy.discard(child)
            keep = healthy and not self._closed
            if keep:
                self._idle.append(child)
            self._cond.notify()
        if not keep:
            child.kill()

    def close(self, *, abort: bool = False) -> None:
        """Stop the pool. Idle children exit; with ``abort`` the busy ones are killed now and
        their callers get AnalysisAborted (else they finish, then exit). Safe in a signal
        handler: it never waits for a busy caller."""
        self._closed = True
        if os.getpid() != self.pid:
            return  # an inherited copy: the children belong to the parent
        if not self._cond.acquire(timeout=2):
            return  # busy callers see ``closed`` within POLL_SECONDS and kill their child
        try:
            idle, self._idle = self._idle, []
            busy = list(self._busy) if abort else []
            self._cond.notify_all()
        finally:
            self._cond.release()
        for child in idle:
            child.kill()
        for child in busy:
            child.signal_kill()  # its caller reaps it and raises AnalysisAborted

    def children(self) -> list[int]:
        """Pids of the live children (for tests and the admin page)."""
        with self._cond:
            return [c.pid for c in [*self._idle, *self._busy]]


# -- the process-wide default ----------------------------------------------------------------

_LOCK = threading.Lock()
_SETTINGS: dict[str, Any] = {}
_DEFAULT: PagePool | None = None


def configure_default(**settings: Any) -> None:
    """Settings (PagePool keyword arguments) for the default pool; replaces an idle one."""
    global _DEFAULT
    with _LOCK:
        _SETTINGS.clear()
        _SETTINGS.update(settings)
        old, _DEFAULT = _DEFAULT, None
    if old is not None:
        old.close()


def default_pool() -> PagePool:
    """This process's pool, built on first use (after a fork, a new one)."""
    global _DEFAULT
    with _LOCK:
        if _DEFAULT is None or _DEFAULT.pid != os.getpid() or _DEFAULT.closed:
            if _DEFAULT is not None and _DEFAULT.closed and _DEFAULT.pid == os.getpid():
                raise AnalysisAborted("analysis pool closed (shutting down)")
            _DEFAULT = PagePool(**_SETTINGS)
        return _DEFAULT


def shutdown_default(*, abort: bool = True) -> None:
    """Close the default pool (warm shutdown): analyses in progress end with AnalysisAborted,
    later ones too."""
    global _DEFAULT
    with _LOCK:
        if _DEFAULT is None or _DEFAULT.pid != os.getpid():
            _DEFAULT = PagePool(**_SETTINGS)  # a closed one, so later analyses stop at once
        pool = _DEFAULT
    pool.close(abort=abort)


def reopen_default() -> None:
    """Forget a closed default pool (tests; a worker that shut down does not reopen)."""
    global _DEFAULT
    with _LOCK:
        if _DEFAULT is not None:
            _DEFAULT.close()
        _DEFAULT = None


def prestart_default() -> int:
    """Start the default pool's children now (see :meth:`PagePool.prestart`)."""
    return default_pool().prestart()


def analyse_page_budgeted(body: bytes, final_url: str, headers: Headers, *,
                          pool: PagePool | None = None,
                          should_abort: Callable[[], bool] | None = None) -> dict:
    """``analyze_page`` under the budget: see :meth:`PagePool.analyse`."""
    return (pool or default_pool()).analyse(body, final_url, headers, should_abort=should_abort)


def _forget_after_fork() -> None:
    """In a forked child: the parent's pool, its pipes and its children are not ours."""
    global _DEFAULT, _LOCK, _SPAWNER, _SPAWNER_LOCK
    _LOCK = threading.Lock()  # another thread may have held it at the fork
    _SPAWNER, _SPAWNER_LOCK = None, threading.Lock()  # its thread did not survive the fork
    pool, _DEFAULT = _DEFAULT, None
    if pool is None:
        return
    for child in [*pool._idle, *pool._busy]:
        try:
            child.conn.close()
        except OSError:
            pass


os.register_at_fork(after_in_child=_forget_after_fork)
