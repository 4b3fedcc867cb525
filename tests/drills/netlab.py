"""A small test network of "hosts" (network namespaces) for the scale-out drill and bench.

Everything runs inside ONE outer namespace made by ``unshare --net --mount --pid --fork``
(:func:`reexec_inside`): nothing can reach the machine's network, the ``ip netns`` mounts
live in a tmpfs seen only inside it, and when its first process ends the kernel ends every
process started in it. Inside, a bridge ``rsbr0`` (198.18.0.1/24, RFC 2544) joins one veth
per child namespace:

==========  ============  ====================================================
namespace   address       runs
==========  ============  ====================================================
db          198.18.0.2    a private PostgreSQL (``initdb`` of the machine's packages)
redis       198.18.0.3    a private ``redis-server`` (PostgreSQL and Redis in two
                          namespaces, so one can be cut off while the other stays)
web         198.18.0.4    gunicorn
worker-a    198.18.0.11   celery worker (threads), beat
worker-b    198.18.0.12   celery worker (threads), beat
sites       198.18.0.20   the fixture competitor sites (``tests/drills/scale_sites.py``)
==========  ============  ====================================================

``Lab.cut(name)`` / ``Lab.mend(name)`` set the host side of a namespace's veth down / up.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INSIDE_ENV = "RIVALSCOPE_NETLAB"
BRIDGE, BRIDGE_ADDRESS = "rsbr0", "198.18.0.1"
HOSTS = {"db": "198.18.0.2", "redis": "198.18.0.3", "web": "198.18.0.4",
         "worker-a": "198.18.0.11", "worker-b": "198.18.0.12", "sites": "198.18.0.20"}
VETH = {"db": "v-db", "redis": "v-redis", "web": "v-web", "worker-a": "v-wa",
        "worker-b": "v-wb", "sites": "v-sites"}
PG_PORT, REDIS_PORT, WEB_PORT, SITE_PORT0 = 5432, 6379, 8000, 8100
DATABASE, QUEUE = "rivalscope_lab", "rivalscope-lab"
USERS = (("lab-a@example.test", "lab-password-a"), ("lab-b@example.test", "lab-password-b"))


def missing_tools() -> str | None:
    """Why the lab cannot run here (None when it can)."""
    from tests.drills.conftest import find_pg_bin

    if os.geteuid() != 0:
        return "the network lab needs root (unshare, ip netns)"
    for tool in ("unshare", "ip", "redis-server", "runuser"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    if not (find_pg_bin() / "initdb").exists():
        return f"PostgreSQL server binaries not found in {find_pg_bin()}"
    return None


def reexec_inside(argv: list[str], *, timeout: float) -> subprocess.CompletedProcess:
    """Run ``argv`` in a fresh outer namespace (network, mounts, pids); output captured."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TEST_DATABASE", "TEST_REDIS", "TEST_PGBOUNCER"))
           and "proxy" not in key.lower()}
    env[INSIDE_ENV] = "1"
    command = ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child",
               "--mount-proc", *argv]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stdout}{done.stderr}")
    return done


@dataclass
class Proc:
    """A process of the lab (own process group, output in a file)."""

    name: str
    process: subprocess.Popen
    logfile: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 15) -> None:
        if not self.alive():
            return
        self.kill(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.process.wait(10)


@dataclass
class Lab:
    """The namespaces, the private services and Rivalscope's processes in them."""

    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rs-netlab-")))
    procs: list[Proc] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    pg_data: Path | None = None

    # --- network -------------------------------------------------------------------------
    def build(self) -> None:
        if os.environ.get(INSIDE_ENV) != "1":
            raise RuntimeError("the lab runs only inside reexec_inside()'s namespace")
        Path("/run/netns").mkdir(parents=True, exist_ok=True)
        sh("mount", "-t", "tmpfs", "rs-netns", "/run/netns")  # private to this namespace
        sh("ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{BRIDGE_ADDRESS}/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        for name, address in HOSTS.items():
            sh("ip", "netns", "add", name)
            self.namespaces.append(name)
            sh("ip", "link", "add", VETH[name], "type", "veth", "peer", "name", "eth0",
               "netns", name)
            sh("ip", "link", "set", VETH[name], "master", BRIDGE, "up")
            sh("ip", "-n", name, "addr", "add", f"{address}/24", "dev", "eth0")
            sh("ip", "-n", name, "link", "set", "eth0", "up")
            sh("ip", "-n", name, "link", "set", "lo", "up")

    def cut(self, name: str) -> None:
        """The host loses its link (its veth's bridge side goes down)."""
        sh("ip", "link", "set", VETH[name], "down")

    def mend(self, name: str) -> None:
        sh("ip", "link", "set", VETH[name], "up")

    # --- processes -----------------------------------------------------------------------
    def spawn(self, name: str, namespace: str, argv: list[str],
              env: dict[str, str] | None = None) -> Proc:
        logfile = self.folder / f"{name}.log"
        with open(logfile, "a") as handle:
            process = subprocess.Popen(["ip", "netns", "exec", namespace, *argv], cwd=ROOT,
                                       env=env or os.environ.copy(), stdout=handle,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        proc = Proc(name, process, logfile)
        self.procs.append(proc)
        return proc

    def start_postgres(self) -> None:
        from tests.drills.conftest import find_pg_bin

        pg_bin = find_pg_bin()
        folder = self.folder / "pg"
        folder.mkdir()
        shutil.chown(self.folder, "postgres", "postgres")
        shutil.chown(folder, "postgres", "postgres")
        self.pg_data = folder / "data"
        run_as = ["runuser", "-u", "postgres", "--"]
        sh(*run_as, str(pg_bin / "initdb"), "-D", str(self.pg_data), "-U", "postgres", "-A",
           "trust", "-E", "UTF8", "--no-sync", "--no-instructions")
        with open(self.pg_data / "pg_hba.conf", "a") as hba:  # the lab's hosts only
            hba.write(f"host all all {BRIDGE_ADDRESS}/24 trust\n")
        options = (f"-p {PG_PORT} -k {folder} -c listen_addresses={HOSTS['db']} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=300")
        sh("ip", "netns", "exec", "db", *run_as, str(pg_bin / "pg_ctl"), "-D",
           str(self.pg_data), "-l", str(folder / "server.log"), "-o", options, "-w", "-t",
           "60", "start")
        sh("ip", "netns", "exec", "db", *run_as, str(pg_bin / "psql"), "-h", str(folder),
           "-p", str(PG_PORT), "-U", "postgres", "-c", f'CREATE DATABASE "{DATABASE}"')

    def stop_postgres(self) -> None:
        from tests.drills.conftest import find_pg_bin

        if self.pg_data is not None and self.pg_data.exists():
            sh("ip", "netns", "exec", "db", "runuser", "-u", "postgres", "--",
               str(find_pg_bin() / "pg_ctl"), "-D", str(self.pg_data), "-m", "immediate",
               "-w", "stop", check=False)

    def start_redis(self) -> Proc:
        proc = self.spawn("redis", "redis", [
            "redis-server", "--port", str(REDIS_PORT), "--bind", HOSTS["redis"], "--save", "",
            "--appendonly", "no", "--daemonize", "no", "--dir", str(self.folder),
            "--protected-mode", "no"])
        self.wait(lambda: self.redis_ping(), 20, "redis-server", proc)
        return proc

    def redis_client(self):
        import redis

        return redis.Redis(host=HOSTS["redis"], port=REDIS_PORT, socket_connect_timeout=2,
                           socket_timeout=5)

    def redis_ping(self) -> bool:
        import redis

        client = self.redis_client()
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@{HOSTS['db']}:{PG_PORT}/{DATABASE}"

    @property
    def broker_url(self) -> str:
        return f"redis://{HOSTS['redis']}:{REDIS_PORT}/0"

    @property
    def base_url(self) -> str:
        return f"http://{HOSTS['web']}:{WEB_PORT}"

    def env(self, role: str, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("TEST_", "DB_", "FETCH_", "CELERY_", "WEB_", "SITE_",
                                      "BEAT_", INSIDE_ENV))}
        env.update({
            "RIVALSCOPE_ENV": "test", "RIVALSCOPE_ROLE": role, "FLASK_APP": "app.py",
            "RIVALSCOPE_INSTANCE": str(self.folder / "instance"),
            "DATABASE_URL": self.database_url, "TEST_DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": self.broker_url, "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
            "FETCH_ALLOW_NETWORKS": f"{HOSTS['sites']}/32", "FETCH_DELAY_SECONDS": "0",
            "SITE_MAX_ATTEMPTS": "20", "SECRET_KEY": "lab-secret", "PYTHONUNBUFFERED": "1",
            "USER_MAX_RUNNING_SITES": "0", "USER_MAX_PAGES_PER_DAY": "1000000",
            # A host cut off in the middle of a transaction keeps its row locks until the
            # server ends the session: 10 s here (DEPLOY.md), not the default 60 s.
            "DB_IDLE_IN_TX_TIMEOUT_MS": "10000",
        })
        env.update(extra)
        return env

    def flask(self, *args: str) -> str:
        done = subprocess.run(["ip", "netns", "exec", "web", sys.executable, "-m", "flask",
                               *args], cwd=ROOT, env=self.env("cli"), capture_output=True,
                              text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"flask {' '.join(args)}:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start_sites(self, count: int, pages: int, delay: float) -> list[str]:
        """``count`` generated sites of ``pages`` pages (homepage included) on the sites
        host; each request is logged (time, port, client, path) to ``sites.requests``."""
        proc = self.spawn("sites", "sites", [
            sys.executable, "-m", "tests.drills.scale_sites", "--bind", HOSTS["sites"],
            "--port", str(SITE_PORT0), "--count", str(count), "--pages", str(pages),
            "--delay", str(delay), "--log", str(self.requests_log)], self.env("sites"))
        self.wait(lambda: "serving" in proc.output(), 20, "the sites", proc)
        return [f"http://{HOSTS['sites']}:{SITE_PORT0 + i}/" for i in range(count)]

    @property
    def requests_log(self) -> Path:
        return self.folder / "sites.requests"

    def requests(self, port: int) -> list[tuple[float, str, str]]:
        """(time, client address, path) of every request the site on ``port`` answered."""
        found = []
        for line in self.requests_log.read_text().splitlines():
            stamp, site_port, client, path = line.split(" ", 3)
            if int(site_port) == port:
                found.append((float(stamp), client, path))
        return sorted(found)

    def start_web(self) -> Proc:
        import httpx

        web = self.spawn("web", "web", [
            sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--bind",
            f"{HOSTS['web']}:{WEB_PORT}", "app:app"],
            self.env("web", WEB_WORKERS="2", WEB_THREADS="4"))

        def healthy() -> bool:
            try:
                return httpx.get(f"{self.base_url}/health", timeout=2,
                                 trust_env=False).status_code == 200
            except httpx.HTTPError:
                return False

        self.wait(healthy, 60, "gunicorn", web)
        return web

    def start_worker(self, host: str, *, concurrency: int, name: str | None = None,
                     **extra: str) -> Proc:
        worker = self.spawn(name or f"worker@{host}", host, [
            sys.executable, "-m", "celery", "-A", "app:celery_app", "worker", "--pool",
            "threads", "--concurrency", str(concurrency), "-Q", QUEUE, "--without-gossip",
            "--without-mingle", "--loglevel", "INFO", "-n", f"{host}-{time.monotonic_ns()}@%h"],
            self.env("worker", **extra))
        self.wait(lambda: " ready." in worker.output(), 60, f"worker on {host}", worker)
        return worker

    def start_beat(self, host: str, **extra: str) -> Proc:
        schedule = self.folder / f"beat-{host}" / "celerybeat-schedule"
        schedule.parent.mkdir(exist_ok=True)
        return self.spawn(f"beat@{host}", host, [
            sys.executable, "-m", "celery", "-A", "app:celery_app", "beat", "--loglevel",
            "INFO", "--schedule", str(schedule)], self.env("beat", **extra))

    def send_task(self, name: str) -> None:
        """Publish a task by name (what beat would send), from the bridge host."""
        from celery import Celery

        client = Celery("lab-client", broker=self.broker_url, set_as_current=False)
        try:
            client.send_task(name, queue=QUEUE)
        finally:
            client.close()

    def engine(self):
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        return sa.create_engine(self.database_url.replace("postgresql://",
                                                          "postgresql+psycopg2://", 1),
                                poolclass=NullPool, connect_args={"connect_timeout": 3})

    def token(self, email: str, password: str) -> dict[str, str]:
        import httpx

        response = httpx.post(f"{self.base_url}/api/v1/tokens",
                              json={"email": email, "password": password}, timeout=30,
                              trust_env=False)
        if response.status_code != 201:
            raise RuntimeError(response.text)
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def submit(self, headers: dict[str, str], urls: list[str], max_pages: int,
               name: str = "lab") -> int:
        """A batch submitted through the web; its id."""
        import httpx

        response = httpx.post(f"{self.base_url}/api/v1/batches", headers=headers, timeout=30,
                              json={"name": name, "urls": urls, "max_pages": max_pages},
                              trust_env=False)
        if response.status_code != 201:
            raise RuntimeError(f"{response.status_code} {response.text}")
        return int(response.json()["id"])

    def setup_app(self) -> None:
        """PostgreSQL, Redis, the schema, the users, gunicorn."""
        self.start_postgres()
        self.start_redis()
        self.flask("db", "upgrade")
        for email, password in USERS:
            self.flask("users", "create", email, "--password", password)
        self.start_web()

    @staticmethod
    def wait(predicate, timeout: float, what: str, *procs: Proc, every: float = 0.2) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            for proc in procs:
                if not proc.alive():
                    raise RuntimeError(f"{proc.name} exited while waiting for {what}:\n"
                                       f"{proc.output()[-3000:]}")
            time.sleep(every)
        tails = "\n".join(f"--- {p.name}:\n{p.output()[-2000:]}" for p in procs)
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")

    # --- cleanup -------------------------------------------------------------------------
    def destroy(self) -> None:
        """Processes, PostgreSQL, namespaces, bridge, the netns tmpfs, files: always."""
        for proc in reversed(self.procs):
            proc.stop(5)
        self.stop_postgres()
        for name in self.namespaces:
            sh("ip", "netns", "delete", name, check=False)
        sh("ip", "link", "delete", BRIDGE, check=False)
        sh("umount", "/run/netns", check=False)
        if os.environ.get("NETLAB_KEEP_LOGS"):
            print(f"netlab: logs kept in {self.folder}")
        else:
            shutil.rmtree(self.folder, ignore_errors=True)


TASK_RECEIVED = re.compile(r"pipeline\.analyze_site\[([0-9a-f-]{36})\] received")


def received_task_ids(proc: Proc) -> set[str]:
    """Ids of the analyze_site messages a worker received (a site's lease owner)."""
    return set(TASK_RECEIVED.findall(proc.output()))
