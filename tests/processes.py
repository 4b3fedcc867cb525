"""Helpers for tests and benchmarks that run real processes."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path


def unexpected_tracebacks(output: str, allowed: tuple[str, ...] = ()) -> list[str]:
    """The last line of every traceback in ``output`` whose exception is not ``allowed``."""
    found = []
    for block in output.split("Traceback (most recent call last):")[1:]:
        last = next((line for line in block.splitlines()
                     if line and not line.startswith((" ", "\t", "Traceback"))), "")
        if not any(name in last for name in allowed):
            found.append(last)
    return found


@dataclass
class ChildProcess:
    """A process started in its own process group, its output in a file (drills, benches)."""

    name: str
    process: subprocess.Popen
    logfile: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def stop(self, timeout: float = 20) -> str:
        """SIGTERM the group, SIGKILL it after ``timeout``; returns the output."""
        if self.process.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
                self.process.wait(timeout)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.process.wait(10)
        return self.output()

    def children(self) -> list[int]:
        """Direct children (gunicorn's workers)."""
        found = []
        for task in Path(f"/proc/{self.pid}/task").glob("*"):
            try:
                found += [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                continue
        return found


def spawn(name: str, argv: list[str], env: dict[str, str], logfile: Path, cwd: Path
          ) -> ChildProcess:
    """Start ``argv`` in a new session with stdout and stderr going to ``logfile``."""
    with open(logfile, "w") as handle:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=handle,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return ChildProcess(name, process, logfile)
