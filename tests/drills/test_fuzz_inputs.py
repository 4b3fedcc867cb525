"""Property tests on what users submit: URL normalisation and batch validation.

Pure functions, no services: these run on both CI runs. Bounded by ``max_examples``.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analysis.urls import InvalidURL, normalize_input_url
from utils.batch_input import BatchInput, validate_batch

BOUNDED = settings(max_examples=400, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# Characters that matter to URL parsers, plus some that should not appear at all.
URL_CHARS = st.sampled_from(list("abcXYZ019-._~:/?#[]@!$&'()*+,;=%\\ \t\n\x00\x7f")
                            + ["ä", "ß", "İ", "ﬀ", "。", "\u200b", "\ufeff", "😀", "٣"])
SCHEMES = st.sampled_from(["", "http://", "https://", "HTTP://", "hTtPs://", "//", "http:/",
                           "http:", "ftp://", "javascript:", "file:///", "http:\\\\", " http://"])
LABEL = st.one_of(
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
            max_size=12),
    st.sampled_from(["", "xn--", "xn--a", "xn--4ca", "a" * 64, "-a", "a-", "ÄÖÜ", "例え"]),
)
HOST = st.one_of(
    st.lists(LABEL, min_size=1, max_size=4).map(".".join),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
    st.sampled_from(["[", "]", "[::1", "::1]", "[::1]", "[v1.x]", "[fe80::1%25eth0]",
                     "[::ffff:127.0.0.1]", "0x7f.1", "1.2.3.4.5", "%41.com", "a..b", ".", ""]),
)
PORT = st.one_of(st.just(""), st.integers(-5, 70000).map(lambda p: f":{p}"),
                 st.text(URL_CHARS, max_size=6).map(lambda t: f":{t}"))
USERINFO = st.one_of(st.just(""), st.text(URL_CHARS, max_size=8).map(lambda t: f"{t}@"))
REST = st.text(URL_CHARS, max_size=24)


@st.composite
def url_like(draw) -> str:
    """Something a user might paste: mostly URL-shaped, sometimes broken in one place."""
    return (draw(SCHEMES) + draw(USERINFO) + draw(HOST) + draw(PORT)
            + draw(st.sampled_from(["", "/", "/a/b", "?q=1", "#f"])) + draw(REST))


ANY_URL_INPUT = st.one_of(url_like(), st.text(max_size=60), st.text(URL_CHARS, max_size=40))


def _normalize_or_none(raw: object) -> str | None:
    """The normal form, None for InvalidURL; any other exception escapes (and fails)."""
    try:
        return normalize_input_url(raw)  # type: ignore[arg-type]
    except InvalidURL:
        return None


@BOUNDED
@given(ANY_URL_INPUT)
@example("http://[::1")
@example("http://[::1]:99999/")
@example("https://例え.テスト/パス")
@example("http://a:b@[::1]:8080/x?y#z")
@example("HTTP://EXAMPLE.com.:80/")
def test_normalize_raises_only_invalid_url(raw):
    try:
        url = normalize_input_url(raw)
    except InvalidURL:
        return
    except Exception as exc:  # noqa: BLE001 - the property under test
        raise AssertionError(f"{type(exc).__name__} (not InvalidURL) for {raw!r}: {exc}") from exc
    assert url.startswith(("http://", "https://")), url
    assert "#" not in url


IDEMPOTENCE_BUGS = (
    "analysis/urls.py: (1) IDNA 2003 nameprep maps some characters to a space plus a "
    "combining mark, so '´' normalises to 'https://xn-- -xbb/' (a host with a space) which "
    "normalize_input_url then rejects; (2) the ideographic full stop: 'a。' normalises to "
    "'https://a./' and again to 'https://a/' (the trailing dot is stripped before IDNA maps "
    "'。' to '.'). Fix: strip trailing dots after encoding and reject an encoded host that is "
    "not letters, digits, '-', '_' and dots.")


@BOUNDED
@given(ANY_URL_INPUT)
@example("´")
@example("a。")
@example("http://[v1.x]/")
@example("ä.com")
@example("//example.com")
@example("http://EXAMPLE.com:443/")
@example("https://EXAMPLE.com:443")
def test_normalize_is_idempotent(raw):
    once = _normalize_or_none(raw)
    if once is None:
        return
    assert not any(ch.isspace() for ch in once), f"{raw!r} -> {once!r}"
    twice = _normalize_or_none(once)
    assert twice == once, f"{raw!r} -> {once!r} -> {twice!r}"


def test_non_strings_are_invalid_urls():
    for value in (None, 1, 1.5, b"http://x", ["http://x"], {"u": 1}, True):
        try:
            normalize_input_url(value)  # type: ignore[arg-type]
        except InvalidURL:
            continue
        raise AssertionError(f"{value!r} was accepted")


JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
                         url_like())
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=6),
                               st.dictionaries(st.text(max_size=8), children, max_size=5)),
    max_leaves=20)
PAYLOADS = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries(
        {},
        optional={"name": JSON_VALUES, "urls": st.one_of(st.lists(ANY_URL_INPUT, max_size=60),
                                                         JSON_VALUES),
                  "max_pages": st.one_of(st.integers(-5, 300), JSON_VALUES)}),
)


@BOUNDED
@given(PAYLOADS, st.integers(1, 60))
@example({"urls": ["http://[::1"]}, 50)
@example({"urls": ["a.com", "A.com", "https://a.com/"], "max_pages": True}, 1)
@example({"name": None, "urls": ["x.com"] * 3, "max_pages": 200}, 1)
def test_validate_batch_never_raises(payload, max_urls):
    result = validate_batch(payload, max_urls)
    assert isinstance(result, BatchInput)
    json.dumps(result.errors)  # the errors are JSON-serialisable for the API
    if result.ok:
        assert 1 <= len(result.urls) <= max_urls
        assert len(set(result.urls)) == len(result.urls)
        assert all(normalize_input_url(u) == u for u in result.urls)
        assert 1 <= result.max_pages <= 200
        assert isinstance(result.name, str) and len(result.name) <= 200
