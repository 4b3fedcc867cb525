"""Shared pieces of the operations tests: users with tokens, a real worker, polling."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from tests.factories import UserFactory
from tests.tasks.test_worker_process import start_worker, stop_worker
from utils.db_operations import UserOps


def bearer(session: Session, *, admin: bool) -> dict[str, str]:
    """A committed user (admin or not) and the Authorization header of a fresh token."""
    user = UserFactory(is_admin=admin)
    token, _row = UserOps.issue_token(session, user, timedelta(hours=1))
    session.commit()
    return {"Authorization": f"Bearer {token}"}


def wait_for(probe: Callable[[], Any], timeout: float, what: str,
             process: subprocess.Popen | None = None) -> Any:
    """Poll ``probe`` until it returns something truthy (bounded in time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process exited while waiting for {what}:\n"
                                 + stop_worker(process))
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class RunningWorker:
    """A real ``celery worker`` process (threads pool) on its own queue and node name."""

    def __init__(self, app: Flask, test_settings: dict, queue: str,
                 env: dict[str, str] | None = None) -> None:
        self.app = app
        self.celery = app.extensions["celery"]
        self.queue = queue
        self.node = f"{queue}@{socket.gethostname()}"
        self.process = start_worker(test_settings, queue, "--include",
                                    "tests.ops.leak_injector", env=env)

    def wait_ready(self, timeout: float = 60.0) -> None:
        def ping() -> bool:
            replies = self.celery.control.ping(destination=[self.node], timeout=0.5) or []
            return any(self.node in reply for reply in replies)

        wait_for(ping, timeout, f"worker {self.node} to answer ping", self.process)

    def command(self, name: str, timeout: float = 5.0, **arguments: Any) -> dict:
        """Send a remote-control command to this worker only; its reply."""
        replies = self.celery.control.broadcast(
            name, arguments=arguments, destination=[self.node], reply=True,
            timeout=timeout, limit=1) or []
        for reply in replies:
            if self.node in reply:
                return reply[self.node]
        raise AssertionError(f"no reply to {name} from {self.node}")

    def stop(self) -> str:
        return stop_worker(self.process)
