"""Beat starts whatever state its schedule file is in (utils.beat_schedule)."""

from __future__ import annotations

import pickle
import shelve
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tasks.test_worker_process import ROOT, stop_worker, worker_env
from utils.beat_schedule import SafeScheduler

STATES = {
    "missing": None,
    "empty": b"",
    "truncated": None,  # a real schedule cut in half, filled in below
    "garbage": b"\x00\xffnot a schedule at all" * 50,
    "not a dict": pickle.dumps(["entries"]),
    "bad entries": pickle.dumps({"entries": {"requeue-stalled-sites": "not an entry"},
                                 "__version__": "5", "tz": "UTC", "utc_enabled": True}),
}


def write_state(path: Path, state: str, app) -> None:
    if state == "missing":
        return
    if state == "truncated":
        first = SafeScheduler(app=app.extensions["celery"], schedule_filename=str(path),
                              lazy=False)
        first.close()
        whole = path.read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
        return
    path.write_bytes(STATES[state])


@pytest.mark.parametrize("state", list(STATES))
def test_scheduler_starts_from_any_state(app, tmp_path, state, caplog):
    path = tmp_path / "celerybeat-schedule"
    write_state(path, state, app)
    scheduler = SafeScheduler(app=app.extensions["celery"], schedule_filename=str(path),
                              lazy=False)
    try:
        assert "requeue-stalled-sites" in scheduler.schedule
    finally:
        scheduler.close()
    # Saved whole, and loaded again with the last run times.
    again = SafeScheduler(app=app.extensions["celery"], schedule_filename=str(path), lazy=False)
    try:
        assert set(again.schedule) >= set(app.extensions["celery"].conf.beat_schedule)
    finally:
        again.close()
    if state not in ("missing",):
        assert "beat schedule" in caplog.text or state == "bad entries"


def test_a_stock_shelve_file_is_replaced(app, tmp_path):
    """A schedule left by Celery's default scheduler (dbm) is not an error either."""
    path = tmp_path / "celerybeat-schedule"
    with shelve.open(str(path)) as store:
        store["entries"] = {}
    scheduler = SafeScheduler(app=app.extensions["celery"], schedule_filename=str(path),
                              lazy=False)
    scheduler.close()
    assert isinstance(pickle.loads(path.read_bytes()), dict)


def test_real_beat_process_runs_on_a_truncated_schedule(app, test_settings, tmp_path):
    """``celery beat`` (the command the Procfile runs) on a 0-byte and a cut schedule file:
    it starts, saves a whole schedule and keeps running."""
    path = tmp_path / "celerybeat-schedule"
    for n, content in enumerate((b"", b"\x80\x05\x95\x10\x00\x00")):
        path.write_bytes(content)
        logfile = tmp_path / f"beat-{n}.log"
        with open(logfile, "w") as stream:
            beat = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "app:celery_app", "beat", "--loglevel",
                 "INFO", "--schedule", str(path)],
                cwd=ROOT, env={**worker_env(test_settings), "RIVALSCOPE_ROLE": "beat"},
                stdout=stream, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and beat.poll() is None:
                if readable_schedule(path):
                    break
                time.sleep(0.3)
            time.sleep(2)
            assert beat.poll() is None, logfile.read_text()
        finally:
            stop_worker(beat)
        output = logfile.read_text()
        assert "beat: Starting..." in output and "starting with a fresh one" in output, output
        assert "Traceback" not in output, output
        assert set(readable_schedule(path)) >= {"requeue-stalled-sites",
                                                 "cleanup-stale-db-sessions"}


def readable_schedule(path: Path) -> dict:
    """The entries of a schedule file beat saved, or {}."""
    try:
        return pickle.loads(path.read_bytes()).get("entries", {})
    except Exception:  # noqa: BLE001 - not written yet
        return {}
