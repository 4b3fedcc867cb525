"""Property tests for the address judgement and URL normalisation (pure: no sockets)."""

from __future__ import annotations

import ipaddress

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.ssrf import judge_address, parse_allow_networks, parse_ipv4_loose
from analysis.urls import InvalidURL, canonical_url, normalize_input_url, origin_of

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PRIVATE_V4 = [
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16",
              "100.64.0.0/10", "224.0.0.0/4", "240.0.0.0/4", "0.0.0.0/8")
]
PRIVATE_V6 = [ipaddress.ip_network(n) for n in ("fc00::/7", "fe80::/10", "ff00::/8", "::1/128")]


def _address_in(network) -> st.SearchStrategy:
    first = int(network.network_address)
    return st.integers(first, first + network.num_addresses - 1).map(
        lambda n, net=network: ipaddress.ip_address(n) if net.version == 4
        else ipaddress.IPv6Address(n)
    )


@FAST
@given(st.sampled_from(PRIVATE_V4).flatmap(_address_in))
def test_every_non_public_ipv4_is_refused_in_every_spelling(addr):
    number = int(addr)
    spellings = [str(addr), str(number), hex(number), f"::ffff:{addr}", f"[::ffff:{addr}]",
                 ".".join(f"0{int(p):o}" for p in str(addr).split("."))]
    for spelling in spellings:
        assert judge_address(spelling, ()) is not None, spelling


@FAST
@given(st.sampled_from(PRIVATE_V6).flatmap(_address_in))
def test_every_non_public_ipv6_is_refused(addr):
    assert judge_address(str(addr), ()) is not None


@FAST
@given(st.integers(0, 2**32 - 1))
def test_loose_ipv4_spellings_agree(number):
    addr = ipaddress.IPv4Address(number)
    a, b, c, d = addr.packed
    assert parse_ipv4_loose(str(number)) == addr
    assert parse_ipv4_loose(hex(number)) == addr
    assert parse_ipv4_loose(f"{a}.{b}.{(c << 8) | d}") == addr
    assert parse_ipv4_loose(f"{a}.{(b << 16) | (c << 8) | d}") == addr
    assert parse_ipv4_loose(f"0{a:o}.0x{b:x}.{c}.{d}") == addr


@FAST
@given(st.integers(0, 2**32 - 1))
def test_mapped_ipv6_is_judged_like_its_ipv4(number):
    addr = ipaddress.IPv4Address(number)
    plain = judge_address(str(addr), ())
    mapped = judge_address(f"::ffff:{addr}", ())
    assert (plain is None) == (mapped is None)
    allow = parse_allow_networks(f"{addr}/32")
    if not addr.is_unspecified:
        assert judge_address(f"::ffff:{addr}", allow) is None


@FAST
@given(st.text(max_size=60))
def test_judge_never_raises_on_junk(text):
    result = judge_address(text, ())
    assert result is None or isinstance(result, str)


@FAST
@given(st.integers(0, 2**128 - 1))
def test_judge_any_ipv6_returns_none_or_reason(number):
    addr = ipaddress.IPv6Address(number)
    result = judge_address(str(addr), ())
    if result is None:
        assert addr.is_global or addr.ipv4_mapped is not None or addr.sixtofour is not None \
            or addr in ipaddress.ip_network("64:ff9b::/96")
    else:
        assert result.startswith("blocked address ")


_label = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?", fullmatch=True)
_host = st.lists(_label, min_size=1, max_size=4).map(".".join)
_path = st.lists(st.from_regex(r"[A-Za-z0-9._~%-]{0,8}", fullmatch=True), max_size=4).map(
    lambda parts: "/" + "/".join(parts)
)


@FAST
@given(
    scheme=st.sampled_from(["http", "https", "HTTP", "HtTpS", ""]),
    host=_host,
    port=st.one_of(st.none(), st.integers(1, 65535)),
    path=st.one_of(st.just(""), _path),
    query=st.one_of(st.just(""), st.from_regex(r"\?[a-z0-9=&]{0,10}", fullmatch=True)),
    fragment=st.one_of(st.just(""), st.from_regex(r"#[a-z0-9]{0,6}", fullmatch=True)),
)
def test_normalised_urls_are_canonical_fixed_points(scheme, host, port, path, query, fragment):
    raw = (f"{scheme}://" if scheme else "") + host + (f":{port}" if port else "") + path
    raw += query + fragment
    try:
        url = normalize_input_url(raw)
    except InvalidURL:
        return
    assert canonical_url(url) == url
    assert "#" not in url
    scheme_out, host_out, port_out = origin_of(url)
    assert scheme_out in ("http", "https")
    assert host_out == host_out.lower()
    assert 0 < port_out <= 65535


@FAST
@given(st.text(max_size=80))
def test_normalize_input_url_raises_only_invalid_url(text):
    try:
        url = normalize_input_url(text)
    except InvalidURL:
        return
    assert url.startswith(("http://", "https://"))
    assert canonical_url(url) == url
