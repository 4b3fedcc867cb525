"""Plain-language words for what the analysis records: issue codes and failure reasons.

``issue_label(code)`` / ``issue_help(code)``: "Missing meta description" and one sentence on
why it matters, for the report's issue codes. ``failure_reason(error)``: what a failed site's
technical error means for a person, e.g. "The site refused the connection" for
``[Errno 111] Connection refused``; the technical text stays available beside it.
"""

from __future__ import annotations

import re

ISSUES: dict[str, tuple[str, str]] = {
    "missing_title": ("Missing page title",
                      "Pages without a <title> show a bare address in search results."),
    "missing_description": ("Missing meta description",
                            "Search engines then pick a random snippet of the page."),
    "duplicate_title": ("Duplicate page title",
                        "Several pages share one title, so searchers cannot tell them apart."),
    "missing_h1": ("Missing main heading (<h1>)",
                   "A page without an <h1> gives readers and search engines no headline."),
    "multiple_h1": ("Several main headings (<h1>)",
                    "More than one <h1> blurs what the page is about."),
    "images_missing_alt": ("Images without alt text",
                           "Screen readers and image search cannot describe these images."),
    "broken_link": ("Broken internal link",
                    "A link on the site leads to a page that answers with an error."),
    "slow_page": ("Slow page (over 1 s)",
                  "Pages that take more than a second to answer lose visitors."),
    "parse_budget_exceeded": ("Page too complex to analyse",
                              "The page took too long to read and was skipped."),
}

# (pattern in the technical error, plain reason); the first match wins.
FAILURES: tuple[tuple[str, str], ...] = (
    (r"WRONG_VERSION_NUMBER|wrong version number|record layer failure",
     "This address does not speak HTTPS; try http://"),
    (r"Errno 111|Connection refused|ECONNREFUSED", "The site refused the connection"),
    (r"CERTIFICATE_VERIFY_FAILED|certificate verify failed|certificate",
     "The site's security certificate is not valid"),
    (r"SSL|TLS|handshake", "A secure (HTTPS) connection to the site failed"),
    (r"Name or service not known|nodename nor servname|getaddrinfo|No address associated|"
     r"Temporary failure in name resolution|Errno -[0-9]+|could not resolve|NXDOMAIN",
     "This address does not exist (its name could not be found)"),
    (r"blocked address|SSRF|not allowed address",
     "This address is on a private or local network, which Rivalscope does not visit"),
    (r"timed? ?out|Timeout|time limit", "The site took too long to answer"),
    (r"redirect loop|Too many redirects|too many redirects|redirects",
     "The site keeps redirecting without reaching a page"),
    (r"HTTP 404|HTTP 410", "The homepage was not found (HTTP error)"),
    (r"HTTP 401|HTTP 403", "The site refused access to its homepage"),
    (r"HTTP 429", "The site asked us to slow down (too many requests)"),
    (r"HTTP 5[0-9][0-9]", "The site's server reported an error"),
    (r"HTTP 4[0-9][0-9]", "The homepage answered with an error"),
    (r"too large|body over|size limit", "The homepage is too large to analyse"),
    (r"not HTML|not html|content type", "The homepage is not a web page (not HTML)"),
    (r"Connection reset|reset by peer|RemoteProtocolError|Server disconnected",
     "The site closed the connection"),
    (r"invalid URL", "This is not a usable web address"),
    (r"Errno 113|No route to host|Network is unreachable|Errno 101",
     "The site cannot be reached from here"),
    (r"parse_budget", "The homepage is too complex to analyse"),
    (r"internal error", "Rivalscope hit an internal error on this site"),
)
_COMPILED = tuple((re.compile(pattern, re.IGNORECASE), text) for pattern, text in FAILURES)


def issue_label(code: str) -> str:
    """"Missing meta description" for ``missing_description``; unknown codes made readable."""
    known = ISSUES.get(code)
    return known[0] if known else code.replace("_", " ").capitalize()


def issue_help(code: str) -> str:
    """One sentence on why the issue matters ("" when unknown)."""
    known = ISSUES.get(code)
    return known[1] if known else ""


def failure_reason(error: str | None) -> str:
    """A plain-language reason for a failed site's technical error."""
    if not error:
        return "The site could not be analysed"
    for pattern, text in _COMPILED:
        if pattern.search(error):
            return text
    return "The site could not be analysed"
