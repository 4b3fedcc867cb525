"""No database transaction is open while the pipeline waits on the network.

The guard: the fetcher's ``before_request`` hook asks the session manager whether a session
of the calling thread is in a transaction (strict in tests: it raises, the site fails and
the leak guard reports it). Then, on PostgreSQL, a slow site is crawled by a real worker
while ``pg_stat_activity`` is sampled, directly and behind PgBouncer with a role whose
``idle_in_transaction_session_timeout`` is 2 s.
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from analysis.fetcher import FetchConfig, Fetcher
from analysis.ssrf import parse_allow_networks
from models import Site
from tasks.analysis_tasks import analyze_site
from tests.conftest import PG_URL
from tests.pgbouncer import pgbouncer_binary, start_pgbouncer
from tests.sites import LocalSite, SiteSpec
from tests.tasks.test_crash_safety import batch_status, submit, wait_for
from tests.tasks.test_pipeline import make_batch, site_ids
from tests.tasks.test_worker_process import start_worker, stop_worker
from utils.database_access import normalize_database_url
from utils.db_session_manager import SESSION_MANAGER, TransactionDuringNetworkIO

CHILD_SITEMAPS = 6


def sitemap_site(delay: float) -> LocalSite:
    """robots.txt naming a sitemap index of 6 children; each of those 8 files is slow."""
    site = LocalSite(SiteSpec(title="Slow sitemaps", pages=2))
    base = site.url.rstrip("/")
    children = [f"/sitemap-{i}.xml" for i in range(CHILD_SITEMAPS)]
    index = "".join(f"<sitemap><loc>{base}{path}</loc></sitemap>" for path in children)
    site.spec.files.update({
        "/robots.txt": ("text/plain", f"User-agent: *\nAllow: /\nSitemap: {base}/index.xml\n"
                        .encode()),
        "/index.xml": ("application/xml", (
            '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/'
            f'sitemap/0.9">{index}</sitemapindex>').encode()),
    })
    for number, path in enumerate(children):
        site.spec.files[path] = ("application/xml", (
            '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<url><loc>{base}/page-{number}</loc></url></urlset>").encode())
    site.spec.path_delays.update({path: delay for path in ["/robots.txt", "/index.xml",
                                                           *children]})
    return site


def test_the_guard_refuses_a_request_inside_a_transaction(app, engine):
    """The guard can fail: a registered session in a transaction, then a fetch."""
    fetcher = Fetcher(FetchConfig(allow_networks=tuple(parse_allow_networks("127.0.0.0/8"))),
                      before_request=lambda url: SESSION_MANAGER.guard_network_io(
                          url, strict=True))
    with LocalSite(SiteSpec(pages=0)) as site, fetcher:
        with SESSION_MANAGER.managed_session(engine, scope="task", owner="guard-test") as s:
            s.execute(sa.select(1))
            with pytest.raises(TransactionDuringNetworkIO, match="guard-test"):
                fetcher.fetch(site.url)
            s.commit()  # the transaction ended: the same fetch is allowed now
            assert fetcher.fetch(site.url).status_code == 200
        assert site.spec.served["/"] == 1
    assert [v["owners"] for v in SESSION_MANAGER.take_network_violations()] == [["guard-test"]]


def test_pipeline_fetches_with_no_transaction_open(app, committed):
    """robots.txt, every sitemap file, the homepage and the pages: all fetched with the task
    session outside a transaction (the strict guard would fail the site otherwise)."""
    assert app.config["DB_NETWORK_GUARD_STRICT"]
    with sitemap_site(delay=0.05) as site:
        batch = make_batch(committed, [site.url], max_pages=3)
        (site_id,) = site_ids(committed, batch)
        assert analyze_site.apply(args=[site_id]).get() == "completed"
        served = dict(site.spec.served)
    committed.expire_all()
    stored = committed.get(Site, site_id)
    assert stored.error is None and stored.attempts == 1
    assert stored.report["sitemap"] == {"found": True, "url_count": CHILD_SITEMAPS}
    assert served["/index.xml"] == 1 and served["/sitemap-5.xml"] == 1
    assert SESSION_MANAGER.take_network_violations() == []


class ActivitySampler(threading.Thread):
    """Samples pg_stat_activity every 100 ms: worker backends idle in a transaction."""

    def __init__(self, url: str, application_name: str = "rivalscope-worker") -> None:
        super().__init__(daemon=True)
        self.engine = sa.create_engine(normalize_database_url(url), poolclass=NullPool)
        self.application_name = application_name
        self.samples = 0
        self.worker_seen = 0
        self.longest_idle_in_tx = 0.0
        self.offenders: list[tuple] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with self.engine.connect() as connection:
            while not self.stop.wait(0.1):
                rows = connection.execute(sa.text(
                    "SELECT pid, state, EXTRACT(EPOCH FROM now() - state_change), "
                    "left(query, 100) FROM pg_stat_activity WHERE application_name = :name"),
                    {"name": self.application_name}).all()
                connection.commit()
                self.samples += 1
                self.worker_seen += bool(rows)
                for pid, state, age, query in rows:
                    if state and state.startswith("idle in transaction"):
                        self.longest_idle_in_tx = max(self.longest_idle_in_tx, float(age))
                        if age > 1.0:
                            self.offenders.append((pid, state, float(age), query))
        self.engine.dispose()


def crawl_slow_site_on_a_worker(committed, settings: dict, env: dict, sampler_url: str
                                ) -> tuple[ActivitySampler, Site]:
    with sitemap_site(delay=1.5) as site:
        sampler = ActivitySampler(sampler_url)
        sampler.start()
        worker = start_worker(settings, env=env)
        try:
            batch_id = submit(committed, [site.url], max_pages=3)
            wait_for(lambda: batch_status(committed, batch_id) in ("completed", "failed"),
                     90, "the slow site to finish", worker)
        finally:
            sampler.stop.set()
            sampler.join(10)
            output = stop_worker(worker)
    committed.rollback()
    stored = committed.scalar(sa.select(Site))
    assert stored.status == "completed", (stored.error, output[-3000:])
    return sampler, stored


def test_no_worker_backend_idles_in_a_transaction_while_crawling(
        app, committed, test_settings, postgres_only):
    if test_settings.get("DB_POOLER"):
        pytest.skip("the PgBouncer variant below covers the pooled path")
    sampler, stored = crawl_slow_site_on_a_worker(
        committed, test_settings, {"DB_IDLE_IN_TX_TIMEOUT_MS": "2000"}, PG_URL)
    assert sampler.samples > 50 and sampler.worker_seen > 0, "the sampler saw no worker"
    assert sampler.offenders == []
    assert stored.attempts == 1
    assert stored.report["sitemap"]["url_count"] == CHILD_SITEMAPS


SLOW_ROLE = "rivalscope_short_tx"


def test_slow_site_completes_behind_pgbouncer_with_a_2s_idle_timeout(
        app, engine, committed, test_settings, postgres_only):
    if pgbouncer_binary() is None:
        pytest.fail("pgbouncer is not installed (apt-get install -y pgbouncer)")
    with engine.connect() as connection:
        exists = connection.scalar(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"),
                                   {"r": SLOW_ROLE})
        if not exists:
            connection.execute(sa.text(f"CREATE ROLE {SLOW_ROLE} LOGIN SUPERUSER"))
        connection.execute(sa.text(
            f"ALTER ROLE {SLOW_ROLE} SET idle_in_transaction_session_timeout = '2s'"))
        connection.commit()
    role_url = sa.engine.make_url(normalize_database_url(PG_URL)).set(username=SLOW_ROLE)
    bouncer = start_pgbouncer(role_url.render_as_string(hide_password=False))
    try:
        settings = {**test_settings, "DATABASE_URL": bouncer.url}
        sampler, stored = crawl_slow_site_on_a_worker(
            committed, settings, {"DB_POOLER": "transaction"}, PG_URL)
    finally:
        bouncer.stop()
    assert sampler.offenders == []
    assert stored.attempts == 1, stored.error
    assert stored.report["sitemap"]["url_count"] == CHILD_SITEMAPS
