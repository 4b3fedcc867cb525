"""Rivalscope started the way the README starts it (``make run``: ``flask db upgrade``, then
``python -m utils.process_manager run web worker beat flower``, i.e. supervisor over the
Procfile), on the embedded defaults: SQLite and the filesystem broker in a private
instance folder, on free ports. Used by the embedded-run drills."""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EMAIL, PASSWORD = "embedded@example.test", "embedded-password-1"
DROPPED_PREFIXES = ("TEST_", "DB_", "FETCH_", "CELERY_", "WEB_", "RIVALSCOPE_", "SITE_",
                    "BROKER_", "FLOWER_", "REQUEUE_", "ALERT_")
DROPPED = ("DATABASE_URL", "SECRET_KEY", "PORT", "MAINTENANCE_DATABASE_URL")


class EmbeddedRun:
    """One ``make run`` in a private folder; ``stop`` ends supervisord and every child."""

    def __init__(self, **extra_env: str) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="rivalscope-embedded-"))
        self.instance = self.folder / "instance"
        self.port, self.flower_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(DROPPED_PREFIXES) and k not in DROPPED}
        env.update({
            "RIVALSCOPE_INSTANCE": str(self.instance), "FLASK_APP": "app.py",
            "PORT": str(self.port), "FLOWER_PORT": str(self.flower_port),
            "FLOWER_URL": f"http://127.0.0.1:{self.flower_port}/",
            "FETCH_ALLOW_NETWORKS": "127.0.0.0/8", "FETCH_DELAY_SECONDS": "0",
            "FETCH_PER_ORIGIN": "4", "BROKER_TRACE": "1", "PYTHONUNBUFFERED": "1",
            # One user plays many clients here: per-user limits are not under test.
            "USER_MAX_RUNNING_SITES": "0", "USER_MAX_BATCHES_PER_HOUR": "0",
            "USER_MAX_PAGES_PER_DAY": "0",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        })
        env.update(extra_env)
        self.env = env
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.output = self.folder / "make-run.log"

    # --- lifecycle ----------------------------------------------------------------------
    def flask(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"flask {' '.join(args)}:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start(self, timeout: float = 90) -> EmbeddedRun:
        self.instance.mkdir(parents=True, exist_ok=True)
        self.flask("db", "upgrade")
        self.flask("users", "create", EMAIL, "--password", PASSWORD, "--admin")
        with open(self.output, "w") as stream:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "utils.process_manager", "run", "web", "worker",
                 "beat", "flower"], cwd=ROOT, env=self.env, stdout=stream,
                stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output.read_text()
            if self.ready() and self.all_running() and self.worker_ready():
                return self
            time.sleep(0.5)
        raise AssertionError(f"make run never became ready:\n{self.output.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)

    # --- supervisor ---------------------------------------------------------------------
    def ctl(self, *args: str) -> str:
        done = subprocess.run([str(BIN / "supervisorctl"), "-c",
                               str(self.instance / "supervisord.conf"), *args],
                              capture_output=True, text=True, timeout=60, env=self.env)
        return done.stdout

    def status(self) -> dict[str, tuple[str, int | None]]:
        states = {}
        for line in self.ctl("status").splitlines():
            parts = line.split()
            if len(parts) >= 2:
                pid = int(parts[3].rstrip(",")) if len(parts) > 3 and parts[2] == "pid" else None
                states[parts[0]] = (parts[1], pid)
        return states

    def pid(self, name: str) -> int | None:
        return self.status().get(name, ("", None))[1]

    def all_running(self) -> bool:
        states = self.status()
        return bool(states) and all(state == "RUNNING" for state, _ in states.values())

    def log(self, name: str) -> str:
        path = self.instance / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def worker_ready(self) -> bool:
        return " ready." in self.log("worker")

    # --- app ----------------------------------------------------------------------------
    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.base}/health/ready", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False

    def token(self) -> dict[str, str]:
        response = httpx.post(f"{self.base}/api/v1/tokens",
                              json={"email": EMAIL, "password": PASSWORD}, timeout=30)
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def engine(self) -> sa.Engine:
        return sa.create_engine(f"sqlite:///{self.instance / 'rivalscope.db'}",
                                poolclass=NullPool, connect_args={"timeout": 30})

    def scalar(self, sql: str, **params):
        engine = self.engine()
        try:
            with engine.connect() as connection:
                return connection.scalar(sa.text(sql), params)
        finally:
            engine.dispose()

    def rows(self, sql: str, **params) -> list:
        engine = self.engine()
        try:
            with engine.connect() as connection:
                return list(connection.execute(sa.text(sql), params))
        finally:
            engine.dispose()

    # --- broker -------------------------------------------------------------------------
    @property
    def broker(self) -> Path:
        return self.instance / "broker"

    def trace(self, queue: str = "celery") -> tuple[Counter, Counter]:
        """Task messages sent (put) and taken (get) on ``queue``, by task id."""
        put, got = Counter(), Counter()
        path = self.broker / "trace.log"
        for line in (path.read_text().splitlines() if path.exists() else []):
            action, name, task_id, *_rest = line.split()
            if name == queue:
                (put if action == "put" else got)[task_id] += 1
        return put, got

    def waiting(self, queue: str = "celery") -> int:
        return sum(1 for name in os.listdir(self.broker / "queue")
                   if name.partition(".")[2] == f"{queue}.msg")

    def schedule_entries(self) -> dict:
        try:
            return pickle.loads((self.instance / "celerybeat-schedule").read_bytes())["entries"]
        except Exception:  # noqa: BLE001 - not written (yet)
            return {}
