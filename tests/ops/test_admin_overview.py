"""The admin overview: each process's health at the top (red when it stopped reporting, with
how long ago), counts of users, batches, running batches and sites failed in the last 24 h;
logs left-aligned with tracebacks that expand."""

from __future__ import annotations

import re
from datetime import timedelta

from models import ProcessSnapshot, SystemLog
from models.base import utcnow
from tests.factories import BatchFactory, SiteFactory, UserFactory
from tests.ops.helpers import bearer


def test_overview_shows_health_and_counts(app, committed):
    client = app.test_client(use_cookies=False)
    headers = bearer(committed, admin=True)
    owner = UserFactory()
    BatchFactory(owner=owner, status="completed")
    running = BatchFactory(owner=owner, status="running")
    SiteFactory(batch=running, status="failed", finished_at=utcnow() - timedelta(hours=1))
    SiteFactory(batch=running, status="failed", finished_at=utcnow() - timedelta(days=3))
    committed.add_all([
        ProcessSnapshot(hostname="w1", pid=11, role="worker", data={},
                        updated_at=utcnow() - timedelta(minutes=45)),
        ProcessSnapshot(hostname="b1", pid=12, role="beat", data={}, updated_at=utcnow()),
        ProcessSnapshot(hostname="old", pid=13, role="web", data={},
                        updated_at=utcnow() - timedelta(days=2))])
    committed.commit()
    page = client.get("/admin", headers=headers).get_data(as_text=True)
    health = re.search(r'<ul class="health" id="process-health">(.*?)</ul>', page, re.S).group(1)
    assert page.index("Process health") < page.index("Open sessions")  # at the top
    stale = re.search(r'<li class="health-bad" data-pid="11"[^>]*>(.*?)</li>', health, re.S)
    assert stale and "stopped reporting" in stale.group(1) and "45 minutes ago" in stale.group(1)
    assert 'class="health-ok" data-pid="12"' in health
    assert 'data-pid="13"' not in health  # silent for more than 24 h: gone from the list
    assert "1 process stopped reporting." in page
    counts = dict(re.findall(r'data-count="(\w+)">([\d,]+)<', page))
    assert counts == {"users": "2", "batches": "2", "running_batches": "1",
                      "failed_sites_24h": "1"}


def test_logs_read_left_to_right_and_tracebacks_expand(app, committed):
    client = app.test_client(use_cookies=False)
    headers = bearer(committed, admin=True)
    committed.add(SystemLog(level="ERROR", logger="x", role="worker", pid=1,
                            message="Task failed: boom\nTraceback (most recent call last):\n"
                                    "  File \"x.py\", line 1\nValueError: boom"))
    committed.commit()
    page = client.get("/admin/logs", headers=headers).get_data(as_text=True)
    row = re.search(r"<tbody>(.*?)</tbody>", page, re.S).group(1)
    assert '<p class="log-message">Task failed: boom</p>' in row
    assert "<summary>Details (3 lines)</summary>" in row and "ValueError: boom" in row
    assert 'class="data-table logs-table"' in page and "grid-table" not in page
