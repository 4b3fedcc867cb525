"""The fetcher and politeness gate shared by every thread of one worker process."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from celery import Celery

from analysis.fetcher import FetchConfig, Fetcher
from analysis.page_budget import prestart_default
from analysis.politeness import Politeness
from analysis.ssrf import parse_allow_networks
from tasks.page_pool import configure as configure_page_pool
from utils.db_session_manager import SESSION_MANAGER
from utils.redis_gate import RedisGate

log = logging.getLogger(__name__)
_LOCK = threading.Lock()
CRAWL_THREADS_PER_PROCESS = 32  # the most crawl threads a worker process is run with


@dataclass
class CrawlTools:
    fetcher: Fetcher
    politeness: Politeness | RedisGate


def build_crawl_tools(config: dict[str, Any]) -> CrawlTools:
    """A fetcher and a politeness gate configured from the Flask config (and the budget of
    this process's page-analysis pool)."""
    configure_page_pool(config)
    fetch_config = FetchConfig(
        allow_networks=tuple(parse_allow_networks(config.get("FETCH_ALLOW_NETWORKS", ""))),
        total_timeout=config["FETCH_TOTAL_TIMEOUT"],
        max_body_bytes=config["FETCH_MAX_BODY_BYTES"],
        # every crawl thread may keep FETCH_PER_ORIGIN requests in flight
        max_connections=max(20, CRAWL_THREADS_PER_PROCESS * config["FETCH_PER_ORIGIN"]),
    )
    politeness = politeness_gate(config)
    strict = bool(config.get("DB_NETWORK_GUARD_STRICT"))

    def no_transaction_open(url: str) -> None:
        SESSION_MANAGER.guard_network_io(url, strict=strict)

    return CrawlTools(Fetcher(fetch_config, before_request=no_transaction_open), politeness)


def politeness_gate(config: dict[str, Any]) -> Politeness | RedisGate:
    """The per-origin gate: shared through Redis when the broker is Redis (every worker on
    every host), else per process (the embedded defaults)."""
    settings = {"concurrency": config["FETCH_PER_ORIGIN"],
                "default_delay": config["FETCH_DELAY_SECONDS"],
                "max_delay": config["FETCH_MAX_CRAWL_DELAY"]}
    url = config.get("CELERY_BROKER_URL", "")
    if url.startswith(("redis://", "rediss://")):
        return RedisGate(url, hold_seconds=config["FETCH_TOTAL_TIMEOUT"] * 2 + 10,
                         prefix=f"rivalscope:gate:{config.get('CELERY_TASK_DEFAULT_QUEUE')}:",
                         **settings)
    return Politeness(**settings)


def crawl_tools_for(celery: Celery) -> CrawlTools:
    """One CrawlTools per worker process, kept on the Celery app (built on first use)."""
    tools = getattr(celery, "crawl_tools", None)
    if tools is None:
        with _LOCK:
            tools = getattr(celery, "crawl_tools", None)
            if tools is None:
                tools = build_crawl_tools(celery.flask_app.config)
                celery.crawl_tools = tools
    return tools


def prepare_worker_process(celery: Celery) -> None:
    """Build this process's crawl tools and start its page-analysis children before its first
    task, so the first pages of the first batch wait on no interpreter starting. A failure
    is logged and left to the first task (which builds them, or fails with the reason)."""
    try:
        crawl_tools_for(celery)
        if celery.flask_app.config["PAGE_POOL_PRESTART"]:
            prestart_default()
    except Exception:  # noqa: BLE001 - a worker still starts; its first task retries this
        log.warning("could not prepare the crawl tools at worker start", exc_info=True)
