"""Plain words for issue codes and failure reasons."""

from __future__ import annotations

import pytest

from analysis.explain import ISSUES, failure_reason, issue_help, issue_label
from analysis.report import ISSUE_CODES


def test_every_issue_code_has_words():
    assert issue_label("missing_description") == "Missing meta description"
    for code in ISSUE_CODES:
        assert code in ISSUES and issue_help(code)
    assert issue_label("some_new_code") == "Some new code"


@pytest.mark.parametrize(("error", "plain"), [
    ("network error: [Errno 111] Connection refused", "The site refused the connection"),
    ("network error: [SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1000)",
     "This address does not speak HTTPS; try http://"),
    ("timeout: no complete response within 20 s", "The site took too long to answer"),
    ("HTTP 500", "The site's server reported an error"),
    ("blocked address 127.0.0.1 (loopback)",
     "This address is on a private or local network, which Rivalscope does not visit"),
    ("network error: [Errno -2] Name or service not known",
     "This address does not exist (its name could not be found)"),
    ("redirect loop: https://a.example/ was already visited",
     "The site keeps redirecting without reaching a page"),
    (None, "The site could not be analysed"),
    ("something unheard of", "The site could not be analysed"),
])
def test_failure_reasons_in_plain_words(error, plain):
    assert failure_reason(error) == plain
