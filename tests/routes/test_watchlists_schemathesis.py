"""Property-based conformance of the watchlist API to its OpenAPI document (schemathesis,
in-process, bounded). A user with a watchlist (id 1), runs and changes exists."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from models import Change, WatchlistRun
from routes.openapi import openapi_document
from tests.factories import BatchFactory, WatchlistFactory
from tests.routes.api_support import empty_queue, user_with_token  # noqa: F401
from tests.routes.test_api_schemathesis import PROXY

schema = schemathesis.openapi.from_dict(openapi_document()).include(
    path_regex="^/api/v1/watchlists")
schema.app = PROXY


@pytest.fixture
def watchlist_bearer(committed):
    user, headers = user_with_token(committed)
    watchlist = WatchlistFactory(owner=user, webhook_url="https://hooks.example/",
                                 notify_emails=["a@example.test"])
    batch = BatchFactory(owner=user, status="completed")
    committed.add(WatchlistRun(watchlist_id=watchlist.id, batch_id=batch.id,
                               scheduled_for=datetime(2026, 6, 1, tzinfo=UTC)))
    committed.add(Change(watchlist_id=watchlist.id, batch_id=batch.id,
                         site_url="https://a.example/", kind="score_changed",
                         before={"score": "seo", "value": 50},
                         after={"score": "seo", "value": 70}))
    committed.commit()
    return headers


@pytest.fixture
def served(app):
    PROXY.target = app
    yield PROXY
    PROXY.target = None


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_watchlist_api_conforms_to_its_openapi_document(case, served, watchlist_bearer):
    case.call_and_validate(app=served, headers=watchlist_bearer,
                           excluded_checks=[positive_data_acceptance])
