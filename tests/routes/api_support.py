"""Helpers shared by the API and page tests: users with tokens, batches with reports, and a
look at the run's Celery queue (what the views enqueued)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from analysis.comparison import compare
from analysis.scoring import score_report
from models import Batch, Comparison, Site, User
from tests.conftest import drain_queue
from tests.factories import BatchFactory, PageFactory, SiteFactory, UserFactory
from utils.db_operations import UserOps


def user_with_token(session: Session, **user_fields: Any) -> tuple[User, dict[str, str]]:
    """A committed user and the Authorization header of a fresh token of theirs."""
    user = UserFactory(**user_fields)
    token, _ = UserOps.issue_token(session, user, timedelta(hours=1))
    session.commit()
    return user, {"Authorization": f"Bearer {token}"}


def sample_report(title: str = "Example", **overrides: Any) -> dict[str, Any]:
    """A complete report (every contract key) for tests that need a finished site."""
    report = {
        "final_url": "https://example.test/", "status_code": 200, "redirect_chain": [],
        "response_time_ms": 120, "page_bytes": 5000, "https": True,
        "security_headers": {name: False for name in (
            "strict-transport-security", "content-security-policy", "x-frame-options",
            "x-content-type-options", "referrer-policy", "permissions-policy")},
        "title": title, "meta_description": "About us", "canonical": None, "lang": "en",
        "has_viewport": True, "h1": [title], "h2_count": 2, "word_count": 300,
        "internal_links": 10, "external_links": 2, "images": 3, "images_missing_alt": 0,
        "open_graph": {}, "jsonld_types": [], "technologies": ["nginx"],
        "robots": {"found": True, "disallow_count": 1, "crawl_delay": None, "sitemaps": []},
        "sitemap": {"found": False, "url_count": 0}, "emails": ["hi@example.test"],
        "social_profiles": {}, "pages_crawled": 2,
        "issues": [{"code": "missing_description", "count": 1}],
    }
    report.update(overrides)
    return report


def finished_batch(session: Session, owner: User, reports: list[dict | None],
                   name: str = "finished") -> Batch:
    """A batch whose sites finished with these reports (None = failed), with its comparison
    computed by the real ``compare``; each completed site gets a homepage page row."""
    failed = sum(1 for r in reports if r is None)
    status = "failed" if failed == len(reports) else "partial" if failed else "completed"
    batch = BatchFactory(owner=owner, name=name, status=status, total_urls=len(reports))
    sites: list[Site] = []
    for index, report in enumerate(reports):
        site = SiteFactory(batch=batch, position=index,
                           url=f"https://site{index}.example/",
                           status="completed" if report else "failed",
                           error=None if report else "HTTP 500",
                           report=report, scores=score_report(report) if report else None)
        sites.append(site)
        if report:
            PageFactory(site_id=site.id, url=site.url, is_homepage=True, analysed=True,
                        status_code=200, record={
                            "url": site.url, "final_url": site.url, "status_code": 200,
                            "analysed": True, "is_homepage": True, "response_time_ms": 100,
                            "error": None, "facts": {"title": report.get("title"),
                                                     "meta_description": None, "h1": []}})
    session.flush()
    data = compare({str(s.id): s.report for s in sites})
    session.add(Comparison(batch_id=batch.id, data=data))
    session.commit()
    return batch


@pytest.fixture(autouse=True)
def empty_queue(app: Flask) -> Iterator[None]:
    """Import into a test module: messages its views enqueue never reach a later worker."""
    yield
    drain_queue(app)
