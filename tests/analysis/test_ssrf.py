"""The SSRF guard.

First the address judgement as a pure function (nothing opens a socket; non-loopback
addresses are only ever judged, never contacted). Then the guard on real sockets: with no
allow-list, every spelling of a loopback address is refused and counting listeners on
127.0.0.1 and ::1 receive no connection at all, also when an allowed server redirects there.
"""

from __future__ import annotations

import ipaddress
import socket
import time

import httpcore
import pytest

from analysis.fetcher import FetchConfig, Fetcher
from analysis.guarded_network import BlockedAddress, GuardedBackend
from analysis.ssrf import (
    judge_address,
    parse_allow_networks,
    parse_ip,
    parse_ipv4_loose,
)
from tests.analysis.conftest import redirect

REFUSED = [
    ("10.0.0.1", "private"),
    ("10.255.255.255", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "this network"),
    ("192.0.2.1", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fc00::1", "unique-local"),
    ("fd12:3456::1", "unique-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("ff02::1", "multicast"),
    ("fec0::1", "site-local"),
    ("2001:db8::1", "documentation"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "link-local"),
    ("[::ffff:192.168.0.1]", "private"),
    ("2002:a00:1::1", "private, embedded IPv4 10.0.0.1"),  # 6to4 around 10.0.0.1
    ("64:ff9b::7f00:1", "loopback, embedded IPv4 127.0.0.1"),  # NAT64 around 127.0.0.1
    ("::a00:1", "reserved"),  # deprecated IPv4-compatible form
    ("2001::1", "IETF protocol assignments"),  # Teredo
]


@pytest.mark.parametrize(("address", "category"), REFUSED)
def test_non_public_addresses_are_refused_with_their_category(address: str, category: str):
    reason = judge_address(address, ())
    assert reason is not None
    assert reason.startswith("blocked address ")
    assert reason.endswith(f"({category})")


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_are_allowed(address: str):
    assert judge_address(address, ()) is None


@pytest.mark.parametrize(
    "spelling",
    ["127.0.0.1", "2130706433", "0x7f000001", "0X7F000001", "0177.0.0.1", "127.1", "127.0.1",
     "0x7f.1", "0177.1", "017700000001", "127.0.0.1."],
)
def test_odd_ipv4_spellings_all_mean_loopback(spelling: str):
    assert parse_ipv4_loose(spelling) == ipaddress.IPv4Address("127.0.0.1")
    assert judge_address(spelling, ()) == "blocked address 127.0.0.1 (loopback)"


@pytest.mark.parametrize(
    "text", ["256.0.0.1", "1.2.3.4.5", "0x1g.0.0.1", "08.0.0.1", "", "example.com", "1..2.3",
             "4294967296", "127.0.0.256"],
)
def test_non_addresses_are_not_parsed_as_ipv4(text: str):
    assert parse_ipv4_loose(text) is None


def test_something_that_is_not_an_address_is_refused_not_crashed():
    assert "not an IP address" in judge_address("example.com", ())


def test_allow_list_exempts_named_networks_only():
    allow = parse_allow_networks("127.0.0.0/8, 10.1.0.0/16")
    assert judge_address("127.0.0.1", allow) is None
    assert judge_address("10.1.2.3", allow) is None
    assert judge_address("10.2.0.1", allow) is not None
    assert judge_address("::1", allow) is not None  # an IPv4 network never covers IPv6


def test_ipv4_mapped_address_is_judged_as_ipv4_for_the_allow_list_too():
    allow = parse_allow_networks("10.0.0.0/8")
    assert judge_address("::ffff:10.0.0.1", allow) is None
    assert judge_address("::ffff:10.0.0.1", ()) is not None
    narrow = parse_allow_networks("127.0.0.2/32")
    assert judge_address("::ffff:127.0.0.2", narrow) is None
    assert judge_address("::ffff:127.0.0.1", narrow) is not None


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "[::]", "0", "0x0", "::ffff:0.0.0.0"])
def test_unspecified_addresses_are_refused_even_when_allow_listed(address: str):
    allow = parse_allow_networks("0.0.0.0/0, ::/0")
    reason = judge_address(address, allow)
    assert reason is not None and "unspecified" in reason


def test_allow_everything_still_allows_loopback_but_not_unspecified():
    allow = parse_allow_networks("0.0.0.0/0,::/0")
    assert judge_address("127.0.0.1", allow) is None
    assert judge_address("::1", allow) is None
    assert judge_address("0.0.0.0", allow) is not None


def test_parse_allow_networks_handles_blanks_host_bits_and_mapped_networks():
    assert parse_allow_networks("") == []
    assert parse_allow_networks(None) == []
    assert parse_allow_networks(" , ") == []
    assert parse_allow_networks("127.0.0.1/8") == [ipaddress.ip_network("127.0.0.0/8")]
    assert parse_allow_networks("::ffff:10.0.0.0/104") == [ipaddress.ip_network("10.0.0.0/8")]
    assert parse_allow_networks("fd00::/8") == [ipaddress.ip_network("fd00::/8")]


def test_parse_allow_networks_names_the_bad_entry():
    with pytest.raises(ValueError, match="nonsense"):
        parse_allow_networks("127.0.0.0/8,nonsense")


def test_parse_ip_accepts_brackets_and_zone_ids():
    assert parse_ip("[::1]") == ipaddress.IPv6Address("::1")
    assert parse_ip("fe80::1%lo") == ipaddress.IPv6Address("fe80::1")


# -- the guard on real sockets ------------------------------------------------------------

V4_SPELLINGS = ["127.0.0.1", "localhost", "2130706433", "0x7f000001", "0177.0.0.1", "127.1",
                "[::ffff:127.0.0.1]", "0.0.0.0"]
V6_SPELLINGS = ["[::1]", "[::]"]


def _assert_listener_works(listener) -> None:
    """The listener does count a real connection (so a zero count means something)."""
    family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.connect((listener.host, listener.port))
    deadline = time.monotonic() + 5
    while listener.connections == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert listener.connections == 1


@pytest.fixture
def listeners(counting_listener):
    v4 = counting_listener("127.0.0.1")
    v6 = counting_listener("::1")
    return v4, v6


def _url(spelling: str, v4, v6) -> str:
    port = v6.port if spelling in V6_SPELLINGS else v4.port
    return f"http://{spelling}:{port}/"


@pytest.mark.parametrize("spelling", V4_SPELLINGS + V6_SPELLINGS)
def test_fetcher_without_allow_list_refuses_every_loopback_spelling(listeners, spelling):
    v4, v6 = listeners
    with Fetcher(FetchConfig(connect_timeout=1, total_timeout=3)) as fetcher:
        result = fetcher.fetch(_url(spelling, v4, v6))
    assert result.status_code is None
    assert result.error is not None and result.error.startswith("blocked address"), result.error
    assert v4.connections == 0 and v6.connections == 0
    _assert_listener_works(v4)
    _assert_listener_works(v6)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "2130706433", "0x7f000001", "0177.0.0.1", "127.1",
             "::ffff:127.0.0.1", "0.0.0.0", "::1", "::"],
)
def test_backend_refuses_at_connect_time_whatever_the_spelling(listeners, host):
    """The connect-time check alone (no pre-check on the URL) refuses every spelling."""
    v4, v6 = listeners
    port = v6.port if host in ("::1", "::") else v4.port
    with pytest.raises(BlockedAddress, match="blocked address"):
        GuardedBackend(()).connect_tcp(host, port, timeout=1)
    assert v4.connections == 0 and v6.connections == 0


def test_a_name_resolving_to_loopback_is_refused(listeners):
    v4, _ = listeners

    def resolver(host, port, type=0):  # noqa: A002 - getaddrinfo's keyword
        assert host == "rebind.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    backend = GuardedBackend((), resolver=resolver)
    with Fetcher(FetchConfig(), backend=backend) as fetcher:
        result = fetcher.fetch(f"http://rebind.example:{v4.port}/")
    assert result.error == "blocked address 127.0.0.1 (loopback)"
    assert v4.connections == 0


def test_redirect_from_an_allowed_server_to_loopback_is_refused(servers, listeners):
    v4, v6 = listeners
    targets = [_url(s, v4, v6) for s in V4_SPELLINGS + V6_SPELLINGS]
    routes = {f"/r{i}": _redirect_reply(t) for i, t in enumerate(targets)}
    allowed = servers.serve(routes, host="127.0.0.2")
    config = FetchConfig(allow_networks=parse_allow_networks("127.0.0.2/32"), total_timeout=3)
    with Fetcher(config) as fetcher:
        for i, target in enumerate(targets):
            result = fetcher.fetch(allowed.url(f"/r{i}"))
            assert result.error is not None, target
            assert result.error.startswith("blocked address"), (target, result.error)
            assert result.redirect_chain == [{"url": allowed.url(f"/r{i}"), "status": 302}]
    assert allowed.paths() == [f"/r{i}" for i in range(len(targets))]
    assert v4.connections == 0 and v6.connections == 0
    _assert_listener_works(v4)


def test_narrow_allow_list_does_not_open_the_rest_of_loopback(servers):
    other = servers.serve({"/": _redirect_reply("/")}, host="127.0.0.1")
    config = FetchConfig(allow_networks=parse_allow_networks("127.0.0.2/32"))
    with Fetcher(config) as fetcher:
        result = fetcher.fetch(other.url("/"))
    assert result.error == "blocked address 127.0.0.1 (loopback)"
    assert other.paths() == []


def test_peer_address_is_checked_after_connecting(counting_listener, monkeypatch):
    """If the socket ends up somewhere else than the judged address, nothing is sent."""
    listener = counting_listener("127.0.0.1")
    original = httpcore.SyncBackend.connect_tcp

    def misrouted(self, host, port, timeout=None, local_address=None, socket_options=None):
        return original(self, "127.0.0.1", listener.port, timeout, local_address, socket_options)

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", misrouted)

    def resolver(host, port, type=0):  # noqa: A002
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port))]

    allow = parse_allow_networks("127.0.0.2/32")
    backend = GuardedBackend(allow, resolver=resolver)
    with Fetcher(FetchConfig(allow_networks=allow), backend=backend) as fetcher:
        result = fetcher.fetch("http://pinned.example/")
    assert result.error == "blocked address 127.0.0.1 (loopback)"
    time.sleep(0.3)
    assert listener.received == b""


def _redirect_reply(location: str):
    return redirect(location)
