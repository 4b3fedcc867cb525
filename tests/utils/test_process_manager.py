"""`make run`'s process manager (utils.process_manager) and the secrets rules (config.py):
supervisor config from the Procfile, secrets generated once, public defaults refused."""

from __future__ import annotations

import io
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from config import DEV_SECRET_KEY, insecure_settings_reason
from tests.ops.test_flower import procfile_command
from tests.tasks.test_worker_process import worker_env
from utils import process_manager

ROOT = Path(__file__).resolve().parents[2]


def test_every_procfile_process_is_a_restarting_supervisor_program(tmp_path):
    processes = process_manager.read_procfile()
    assert list(processes) == ["web", "worker", "beat", "flower"]
    text = process_manager.supervisor_config(tmp_path, processes)
    for name in processes:
        assert f"[program:{name}]" in text
    assert text.count("autorestart=true") == len(processes) + 1  # + the event listener
    assert "-n worker@%%h" in text  # supervisord would expand a bare %
    assert "events=PROCESS_STATE_EXITED,PROCESS_STATE_FATAL" in text
    assert "exec gunicorn" in text and "export RIVALSCOPE_ROLE=web;" in text


def test_a_procfile_line_keeps_its_environment_and_execs():
    command = process_manager.shell_command("A=1 B=two env")
    assert command.startswith("/bin/sh -c ")
    done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=10)
    assert "A=1" in done.stdout.splitlines() and "B=two" in done.stdout.splitlines()


def test_secrets_are_generated_once_and_the_flower_password_printed_once(tmp_path,
                                                                          monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("FLOWER_BASIC_AUTH", raising=False)
    first_out, second_out = io.StringIO(), io.StringIO()
    first = process_manager.prepare_secrets(tmp_path, out=first_out)
    second = process_manager.prepare_secrets(tmp_path, out=second_out)
    assert first == second  # sessions survive restarts: the same key every run
    assert len(first["SECRET_KEY"]) >= 48 and first["SECRET_KEY"] != DEV_SECRET_KEY
    user, password = first["FLOWER_BASIC_AUTH"].split(":")
    assert user == "admin" and len(password) >= 20
    assert password in first_out.getvalue()
    assert password not in second_out.getvalue()
    assert "flower_password" in second_out.getvalue()
    for name in ("secret_key", "flower_password"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_environment_secrets_win(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    monkeypatch.setenv("FLOWER_BASIC_AUTH", "ops:long-random-password")
    assert process_manager.prepare_secrets(tmp_path, out=io.StringIO()) == {}
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize(("settings", "role", "refused"), [
    ({"ENV_NAME": "production", "SECRET_KEY": ""}, "web", "SECRET_KEY is unset"),
    ({"ENV_NAME": "production", "SECRET_KEY": DEV_SECRET_KEY}, "worker", "SECRET_KEY"),
    ({"ENV_NAME": "production", "SECRET_KEY": "x" * 40}, "web", None),
    ({"ENV_NAME": "development", "SECRET_KEY": DEV_SECRET_KEY}, "web", None),
    ({"ENV_NAME": "development", "FLOWER_BASIC_AUTH": "admin:change-me"}, "flower",
     "admin:change-me"),
    ({"ENV_NAME": "development", "FLOWER_BASIC_AUTH": ""}, "flower", "not set"),
    ({"ENV_NAME": "development", "FLOWER_BASIC_AUTH": "ops:Zq8-long-pass"}, "flower", None),
])
def test_insecure_settings_are_refused(settings, role, refused):
    reason = insecure_settings_reason(settings, role)
    if refused is None:
        assert reason is None
    else:
        assert reason and refused in reason and "\n" not in reason


def run_app(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def test_production_app_refuses_to_start_without_a_secret_key(test_settings):
    env = {**worker_env(test_settings), "RIVALSCOPE_ENV": "production", "RIVALSCOPE_ROLE": "web"}
    env.pop("SECRET_KEY", None)
    done = run_app(env, sys.executable, "-c", "import app; app.app")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Rivalscope refuses to start: SECRET_KEY is unset or the development value "
        "(RIVALSCOPE_ENV=production); set SECRET_KEY to a long random string"]
    env["SECRET_KEY"] = "a-long-random-production-secret-value"
    assert run_app(env, sys.executable, "-c", "import app; app.app").returncode == 0


def test_flower_from_the_procfile_refuses_the_public_default(test_settings):
    env = {**worker_env(test_settings), "FLOWER_BASIC_AUTH": "admin:change-me",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = run_app(env, "bash", "-c", "exec env " + procfile_command("flower"))
    assert done.returncode != 0
    assert "Flower refuses to start: FLOWER_BASIC_AUTH is the public default" in (
        done.stdout + done.stderr)


def test_the_event_listener_records_supervisor_events(app, committed):
    """utils.process_events parses supervisor's payloads: an unexpected exit and a give-up
    are recorded (and alerted); an expected exit is recorded quietly."""
    import sqlalchemy as sa

    from models import SystemLog
    from utils.alerts import PROCESS_LOGGER, SENDER
    from utils.process_events import handle

    with app.app_context():
        died = handle({"eventname": "PROCESS_STATE_EXITED"},
                      "processname:worker groupname:worker from_state:RUNNING expected:0 "
                      "pid:4321")
        fatal = handle({"eventname": "PROCESS_STATE_FATAL"},
                       "processname:beat groupname:beat from_state:BACKOFF")
        quiet = handle({"eventname": "PROCESS_STATE_EXITED"},
                       "processname:web groupname:web from_state:RUNNING expected:1 pid:7")
        ignored = handle({"eventname": "TICK_60"}, "when:1")
        assert SENDER.flush()
    assert died == "worker (pid 4321) died unexpectedly and was restarted"
    assert fatal == "beat could not be started; the process manager gave up"
    assert quiet == "web (pid 7) exited as expected" and ignored is None
    rows = committed.execute(sa.select(SystemLog.level, SystemLog.message).where(
        SystemLog.logger == PROCESS_LOGGER).order_by(SystemLog.id)).all()
    assert [tuple(r) for r in rows] == [("ERROR", died), ("CRITICAL", fatal), ("INFO", quiet)]
