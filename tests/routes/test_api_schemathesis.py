"""Property-based API conformance: schemathesis generates requests from /api/v1/openapi.json
and runs them in-process against the WSGI app with a bearer token. No 5xx; status codes,
content types, headers and bodies conform to the document. Bounded: few examples each.

``positive_data_acceptance`` is left out: a schema-valid string is not always a valid URL
(``urls`` items are plain strings), and those are rightly refused with 400.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from routes.openapi import openapi_document
from tests.factories import BatchFactory, SiteFactory
from tests.routes.api_support import (  # noqa: F401 - empty_queue is an autouse fixture
    empty_queue,
    finished_batch,
    sample_report,
    user_with_token,
)


@pytest.fixture
def bearer(committed):
    """A user with a token, a finished batch and a running one (ids 1.. exist)."""
    user, headers = user_with_token(committed)
    finished_batch(committed, user, [sample_report("A"), sample_report("B"), None])
    running = BatchFactory(owner=user, status="running", total_urls=1)
    SiteFactory(batch=running, status="running")
    committed.commit()
    return headers


class WsgiProxy:
    """A WSGI callable that forwards to the test session's app (set by ``served_by``)."""

    target = None

    def __call__(self, environ, start_response):
        return self.target(environ, start_response)


PROXY = WsgiProxy()
# The document the app serves at /api/v1/openapi.json is built by this same function (and
# test_api_errors checks it lists every route); loading it here lets pytest collect one
# test per operation (schemathesis' lazy fixture loader does not work with pytest 9).
schema = schemathesis.openapi.from_dict(openapi_document())
schema.app = PROXY


@pytest.fixture
def served_by(app):
    """Requests, including the checks' own probes, go in-process to the app."""
    PROXY.target = app
    yield PROXY
    PROXY.target = None


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case, served_by, bearer):
    case.call_and_validate(app=served_by, headers=bearer,
                           excluded_checks=[positive_data_acceptance])
