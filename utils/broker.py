"""Broker readiness: can we reach the Celery broker right now?"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery


def check_broker(celery: Celery, timeout: float = 2.0) -> dict[str, Any]:
    """ok, latency and the error; the filesystem transport checks its folders."""
    started = time.perf_counter()
    options = celery.conf.broker_transport_options or {}
    try:
        if str(celery.conf.broker_url).startswith("filesystem"):
            folder = options.get("data_folder_in", "")
            if not folder or not os.access(folder, os.W_OK):
                raise OSError(f"broker folder {folder!r} is not writable")
        else:
            with celery.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=timeout)
                connection.default_channel  # noqa: B018 - opens the channel
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return {"ok": False, "error": str(exc)[:300] or type(exc).__name__,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
