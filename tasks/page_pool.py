"""The worker side of the page-analysis pool (analysis/page_budget.py).

``configure(config)`` sets the pool's budget from the Flask config (called when a process
builds its crawl tools). On warm shutdown the pool is closed with ``abort``: analyses in
progress are killed at once and their crawls stop as if cancelled, so SIGTERM never waits on
a hostile page. A prefork child closes its own pool when it exits.
"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_process_shutdown, worker_shutting_down

from analysis.page_budget import configure_default, shutdown_default


def configure(config: dict[str, Any]) -> None:
    """Budget, size and memory cap of this process's pool, from the config."""
    configure_default(budget_seconds=config["PAGE_BUDGET_SECONDS"],
                      max_children=config["PAGE_POOL_MAX_CHILDREN"],
                      memory_limit_mb=config["PAGE_MEMORY_LIMIT_MB"],
                      target=config["PAGE_ANALYSIS_TARGET"])


@worker_shutting_down.connect(weak=False)
def _abort_on_shutdown(**_kwargs: Any) -> None:
    shutdown_default(abort=True)


@worker_process_shutdown.connect(weak=False)
def _close_on_child_exit(**_kwargs: Any) -> None:
    shutdown_default(abort=True)
