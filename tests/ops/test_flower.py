"""The Procfile's flower command, as written, serves Flower behind basic auth."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.conftest import free_port
from tests.tasks.test_worker_process import worker_env

ROOT = Path(__file__).resolve().parents[2]


def procfile_command(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        key, _, command = line.partition(":")
        if key.strip() == name:
            return command.strip()
    raise AssertionError(f"no {name} line in the Procfile")


def test_flower_from_the_procfile_requires_basic_auth(test_settings):
    port = free_port()
    env = {**worker_env(test_settings), "FLOWER_PORT": str(port),
           "FLOWER_BASIC_AUTH": "ops:s3cret-pass",
           "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    process = subprocess.Popen(["bash", "-c", "exec env " + procfile_command("flower")],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 60
        anonymous = None
        while time.monotonic() < deadline and anonymous is None:
            assert process.poll() is None, process.stdout.read()
            try:
                anonymous = httpx.get(url, timeout=2)
            except httpx.TransportError:
                time.sleep(0.3)
        assert anonymous is not None, "flower never answered"
        assert anonymous.status_code == 401
        assert "basic" in anonymous.headers.get("www-authenticate", "").lower()
        assert httpx.get(url, auth=("ops", "wrong"), timeout=5).status_code == 401
        allowed = httpx.get(url, auth=("ops", "s3cret-pass"), timeout=5)
        assert allowed.status_code == 200
        assert "Flower" in allowed.text
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
