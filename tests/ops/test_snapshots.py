"""Process snapshots: a daemon thread publishes this process's figures every N seconds, and
a forked child restarts it and publishes its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from models import ProcessSnapshot
from models.base import utcnow
from tests.ops.helpers import wait_for
from tests.tasks.test_worker_process import ROOT, stop_worker, worker_env
from utils.background_db import BackgroundDatabase
from utils.snapshots import PUBLISHER


@pytest.fixture
def fast_publisher(app, test_settings):
    """The process publisher, pointed at the test database and publishing every 0.2 s."""
    saved = PUBLISHER.database, PUBLISHER.interval
    database = BackgroundDatabase(test_settings["DATABASE_URL"], app.config, "web")
    PUBLISHER.stop()
    PUBLISHER.configure(database, 0.2)
    yield PUBLISHER
    PUBLISHER.stop()
    PUBLISHER.configure(*saved)
    database.dispose()


def snapshot_of(session, pid: int) -> ProcessSnapshot | None:
    session.rollback()
    return session.scalar(sa.select(ProcessSnapshot).where(ProcessSnapshot.pid == pid))


def test_publishes_periodically_from_a_daemon_thread(committed, fast_publisher):
    started, before = utcnow(), fast_publisher.published
    fast_publisher.ensure_started()
    assert fast_publisher.running()
    wait_for(lambda: fast_publisher.published >= before + 2, 10, "two snapshots from the thread")
    row = snapshot_of(committed, os.getpid())
    assert row.updated_at >= started
    assert row.role == "web"
    assert {"open_sessions", "pools", "by_scope", "errors"} <= set(row.data)
    stamp = row.updated_at
    wait_for(lambda: snapshot_of(committed, os.getpid()).updated_at > stamp, 10,
             "a later snapshot")


def test_forked_child_restarts_the_publisher(committed, fast_publisher):
    before = fast_publisher.published
    fast_publisher.ensure_started()
    wait_for(lambda: fast_publisher.published > before, 10, "the parent's first snapshot")
    pid = os.fork()
    if pid == 0:  # the child: the parent's thread did not survive the fork
        code = 1
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and PUBLISHER.published < 1:
                time.sleep(0.05)
            code = 0 if PUBLISHER.published >= 1 and PUBLISHER.running() else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    row = snapshot_of(committed, pid)
    assert row is not None, "the child never published its snapshot"
    assert row.data["pid"] == pid
    assert fast_publisher.running()  # the parent's thread goes on


def test_beat_process_publishes_its_snapshot(committed, test_settings, tmp_path):
    env = {**worker_env(test_settings), "RIVALSCOPE_ROLE": "beat",
           "SNAPSHOT_INTERVAL_SECONDS": "0.5"}
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "app:celery_app", "beat", "--loglevel", "INFO",
         "--schedule", str(tmp_path / "celerybeat-schedule")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    try:
        row = wait_for(lambda: snapshot_of(committed, beat.pid), 60, "beat's snapshot", beat)
        assert row.role == "beat"
        assert row.data["pools"]
    finally:
        output = stop_worker(beat)
    assert "Traceback" not in output, output
