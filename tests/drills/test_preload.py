"""Fork safety for real in the web role: ``gunicorn --preload`` builds the app (and checks
the database) in the master, then forks its workers. Under load, every PostgreSQL
connection belongs to exactly one process."""

from __future__ import annotations

import re
import subprocess
import threading

import httpx

from tests.drills.conftest import Drill
from tests.processes import unexpected_tracebacks

REQUESTS_PER_THREAD = 40
THREADS = 6


def database_sockets(port: int) -> list[set[int]]:
    """For each TCP connection to the database port: the pids holding that socket."""
    listing = subprocess.run(["ss", "-tnpH", "state", "established", "dst",
                              f"127.0.0.1:{port}"], capture_output=True, text=True,
                             check=True).stdout
    return [{int(pid) for pid in re.findall(r"pid=(\d+)", line)}
            for line in listing.splitlines() if "pid=" in line]


def test_preloaded_gunicorn_workers_share_no_connection(drill: Drill):
    web, base = drill.start_web(workers=2, threads=4, gunicorn_args=("--preload",))
    try:
        headers = drill.token(base)
        created = httpx.post(f"{base}/api/v1/batches", headers=headers,
                             json={"name": "preload", "urls": ["https://a.example/"]},
                             timeout=30)
        assert created.status_code == 201, created.text
        url = f"{base}/api/v1/batches/{created.json()['id']}"
        statuses: list[int] = []

        def reader() -> None:
            with httpx.Client(timeout=30) as http:
                for _ in range(REQUESTS_PER_THREAD):
                    statuses.append(http.get(url, headers=headers).status_code)

        threads = [threading.Thread(target=reader) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert statuses.count(200) == THREADS * REQUESTS_PER_THREAD, set(statuses)

        workers = set(web.children())
        sockets = [pids for pids in database_sockets(drill.pg.port) if pids & (workers |
                                                                               {web.pid})]
        assert sockets, "no web connection to the database was seen: the drill proved nothing"
        shared = [pids for pids in sockets if len(pids) > 1]
        assert shared == [], f"connections held by several processes: {shared}"
        assert not any(web.pid in pids for pids in sockets), "the master kept a connection"
    finally:
        output = web.stop()
    assert unexpected_tracebacks(output) == []
