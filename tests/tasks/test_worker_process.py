"""A real Celery worker process (threads pool) writes through its thread-scoped session."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from models import ProcessSnapshot

ROOT = Path(__file__).resolve().parents[2]


def worker_env(test_settings: dict) -> dict:
    env = dict(os.environ)
    env.update({
        "RIVALSCOPE_ENV": "test",
        "RIVALSCOPE_ROLE": "worker",
        "DATABASE_URL": test_settings["DATABASE_URL"],
        "TEST_DATABASE_URL": test_settings["DATABASE_URL"],
        "CELERY_BROKER_URL": test_settings["CELERY_BROKER_URL"],
        "BROKER_FOLDER": str(test_settings["BROKER_FOLDER"]),
        "FETCH_ALLOW_NETWORKS": test_settings["FETCH_ALLOW_NETWORKS"],
        "CELERY_TASK_DEFAULT_QUEUE": test_settings["CELERY_TASK_DEFAULT_QUEUE"],
        # tests that watch a worker's analysis children count the ones their pages start
        "PAGE_POOL_PRESTART": "0",
    })
    return env


def start_worker(test_settings: dict, queue: str | None = None, *extra: str,
                 env: dict | None = None) -> subprocess.Popen:
    """Start ``celery worker --pool threads`` (default: this run's queue); the caller stops it."""
    queue = queue or test_settings["CELERY_TASK_DEFAULT_QUEUE"]
    pool = [] if "--pool" in extra else ["--pool", "threads"]
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "app:celery_app", "worker", *pool,
         "--concurrency", "2", "-Q", queue, "--without-gossip", "--without-mingle",
         "--loglevel", "INFO", "-n", f"{queue}@%h", *extra],
        cwd=ROOT, env={**worker_env(test_settings), **(env or {})}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True)


def stop_worker(process: subprocess.Popen) -> str:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    return process.stdout.read() if process.stdout else ""


def test_worker_task_writes_through_its_thread_session(app, committed, test_settings):
    queue = f"test-worker-{os.getpid()}"
    worker = start_worker(test_settings, queue)
    try:
        celery = app.extensions["celery"]
        celery.send_task("maintenance.publish_snapshot", queue=queue)
        deadline = time.monotonic() + 60
        row = None
        while time.monotonic() < deadline and row is None:
            assert worker.poll() is None, stop_worker(worker)
            committed.rollback()
            row = committed.scalar(sa.select(ProcessSnapshot).where(
                ProcessSnapshot.role == "worker"))
            time.sleep(0.3)
        assert row is not None, "the worker never stored its snapshot"
        assert row.pid == worker.pid
        # The task's own session was open while it ran and closed afterwards.
        assert row.data["by_scope"]["task"] == 1
    finally:
        output = stop_worker(worker)
    assert "Traceback" not in output, output


def test_worker_refuses_to_start_on_an_unmigrated_database(test_settings, tmp_path):
    """Every role checks the schema on start: a worker on an empty database exits with a
    message telling what to run."""
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    worker = start_worker(test_settings, f"refuse-{os.getpid()}",
                          env={"DATABASE_URL": empty, "TEST_DATABASE_URL": empty})
    try:
        worker.wait(60)
    finally:
        output = stop_worker(worker)
    assert worker.returncode != 0
    assert "Rivalscope cannot start" in output and "flask db upgrade" in output


def analysis_children(root: int) -> dict[int, int]:
    """Page-analysis interpreters under ``root``: pid -> parent pid."""
    found, todo = {}, [root]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                continue
            for kid in kids:
                todo.append(kid)
                try:
                    cmdline = Path(f"/proc/{kid}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"analysis.page_budget" in cmdline:
                    found[kid] = parent
    return found


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_a_worker_starts_its_analysis_children_before_any_task(app, test_settings, pool):
    """Each process that runs tasks starts PAGE_POOL_MAX_CHILDREN analysis interpreters once
    it is up, before any task arrives (a prefork parent, which runs none, starts none)."""
    queue = f"test-prestart-{pool}-{os.getpid()}"
    worker = start_worker(test_settings, queue, "--pool", pool,
                          env={"PAGE_POOL_MAX_CHILDREN": "2", "PAGE_POOL_PRESTART": "1"})
    try:
        expected = 2 if pool == "threads" else 4  # prefork: 2 task processes x 2
        deadline = time.monotonic() + 60
        children = {}
        while time.monotonic() < deadline and len(children) < expected:
            assert worker.poll() is None, stop_worker(worker)
            time.sleep(0.2)
            children = analysis_children(worker.pid)
        time.sleep(1)  # no more than that are started
        children = analysis_children(worker.pid)
        assert len(children) == expected, children
        parents = set(children.values())
        if pool == "threads":
            assert parents == {worker.pid}
        else:
            assert len(parents) == 2 and worker.pid not in parents
    finally:
        output = stop_worker(worker)
    assert "Traceback" not in output, output
    assert not any(Path(f"/proc/{pid}").exists() for pid in children)  # gone with the worker
