"""SSRF guard: decide, as a pure function, whether the crawler may connect to an address.

Only globally routable unicast addresses are allowed, unless the address falls inside an
explicitly allowed network (the ``FETCH_ALLOW_NETWORKS`` setting, for tests and intranets).
``0.0.0.0`` and ``::`` are refused even when allow-listed: connecting to them reaches the
local host. An IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) is judged as its IPv4 address,
for refusal and for the allow-list alike; addresses that embed an IPv4 address in other
ways (6to4, NAT64) are refused when the embedded address would be; the deprecated
IPv4-compatible form ``::a.b.c.d`` is reserved and always refused.

The fetcher calls :func:`judge_address` on every address it resolves and again on the
address the socket actually connected to, so a DNS answer cannot slip a private address in.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

_NAT64 = IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = IPv6Network("64:ff9b:1::/48")

# Checked in order; the first match names the reason. Anything not matched here must still
# be globally routable (``is_global``) to be allowed.
_IPV4_CATEGORIES: tuple[tuple[str, IPv4Network], ...] = (
    ("unspecified", IPv4Network("0.0.0.0/32")),
    ("this network", IPv4Network("0.0.0.0/8")),
    ("loopback", IPv4Network("127.0.0.0/8")),
    ("private", IPv4Network("10.0.0.0/8")),
    ("private", IPv4Network("172.16.0.0/12")),
    ("private", IPv4Network("192.168.0.0/16")),
    ("link-local", IPv4Network("169.254.0.0/16")),
    ("carrier-grade NAT", IPv4Network("100.64.0.0/10")),
    ("IETF protocol assignments", IPv4Network("192.0.0.0/24")),
    ("documentation", IPv4Network("192.0.2.0/24")),
    ("documentation", IPv4Network("198.51.100.0/24")),
    ("documentation", IPv4Network("203.0.113.0/24")),
    ("benchmarking", IPv4Network("198.18.0.0/15")),
    ("multicast", IPv4Network("224.0.0.0/4")),
    ("broadcast", IPv4Network("255.255.255.255/32")),
    ("reserved", IPv4Network("240.0.0.0/4")),
)

_IPV6_CATEGORIES: tuple[tuple[str, IPv6Network], ...] = (
    ("unspecified", IPv6Network("::/128")),
    ("loopback", IPv6Network("::1/128")),
    ("multicast", IPv6Network("ff00::/8")),
    ("link-local", IPv6Network("fe80::/10")),
    ("site-local", IPv6Network("fec0::/10")),
    ("unique-local", IPv6Network("fc00::/7")),
    ("documentation", IPv6Network("2001:db8::/32")),
    ("discard-only", IPv6Network("100::/64")),
    ("NAT64 local-use", _NAT64_LOCAL),
    ("IETF protocol assignments", IPv6Network("2001::/23")),
    ("reserved", IPv6Network("::/8")),
)


class AddressParseError(ValueError):
    """The text is not an IP address in any spelling we accept."""


def _parse_ipv4_part(part: str) -> int:
    """One dotted component as inet_aton reads it: 0x.. hex, 0.. octal, else decimal."""
    if not part:
        raise AddressParseError("empty IPv4 component")
    lowered = part.lower()
    if lowered.startswith("0x"):
        digits, base = lowered[2:], 16
        if not digits:
            return 0
    elif len(part) > 1 and part.startswith("0"):
        digits, base = part[1:], 8
    else:
        digits, base = part, 10
    allowed = "0123456789abcdef"[:base]
    if not digits or any(ch not in allowed for ch in digits):
        raise AddressParseError(f"bad IPv4 component {part!r}")
    return int(digits, base)


def parse_ipv4_loose(text: str) -> IPv4Address | None:
    """Read an IPv4 address the way the C library does (inet_aton), or return None.

    Accepts decimal ``2130706433``, hex ``0x7f000001``, octal ``0177.0.0.1``, short forms
    ``127.1`` and ``127.0.1``, and mixtures; these all reach the same host when a URL
    with such a host is fetched, so the guard must see through them.
    """
    text = text.strip()
    if text.endswith("."):
        text = text[:-1]
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    try:
        values = [_parse_ipv4_part(p) for p in parts]
    except AddressParseError:
        return None
    *head, last = values
    if any(v > 0xFF for v in head):
        return None
    last_bits = 8 * (4 - len(head))
    if last >= 1 << last_bits:
        return None
    number = 0
    for v in head:
        number = (number << 8) | v
    number = (number << last_bits) | last
    return IPv4Address(number)


def parse_ip(text: str) -> IPAddress:
    """Parse an IP address in any accepted spelling (brackets and IPv6 zone ids allowed).

    Raises AddressParseError if the text is not an address.
    """
    if not isinstance(text, str):
        text = str(text)
    value = text.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    if ":" in value:
        value = value.split("%", 1)[0]
        try:
            return IPv6Address(value)
        except ValueError as exc:
            raise AddressParseError(f"not an IP address: {text!r}") from exc
    loose = parse_ipv4_loose(value)
    if loose is None:
        raise AddressParseError(f"not an IP address: {text!r}")
    return loose


def _embedded_ipv4(addr: IPv6Address) -> IPv4Address | None:
    """The IPv4 address carried inside a 6to4 or NAT64 IPv6 address."""
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr in _NAT64:
        return IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def address_category(addr: IPAddress) -> str | None:
    """Why an address is not publicly routable ("loopback", "private", ...), or None.

    IPv4-mapped addresses must already have been converted by the caller.
    """
    if isinstance(addr, IPv4Address):
        for name, network in _IPV4_CATEGORIES:
            if addr in network:
                return name
    else:
        embedded = _embedded_ipv4(addr)
        if embedded is not None:
            inner = address_category(embedded)
            if inner is not None:
                return f"{inner}, embedded IPv4 {embedded}"
            if addr in _NAT64:
                return None  # a NAT64 address of a public IPv4 host is that host
        for name, network in _IPV6_CATEGORIES:
            if addr in network:
                return name
    if not addr.is_global:
        return "not globally routable"
    return None


def _in_allowed(addr: IPAddress, allow_networks: Iterable[IPNetwork]) -> bool:
    for network in allow_networks:
        if addr.version == network.version and addr in network:
            return True
    return False


def judge_address(ip: str | IPAddress, allow_networks: Iterable[IPNetwork] = ()) -> str | None:
    """Return None when the crawler may connect to ``ip``, else the reason it may not.

    The reason reads like ``"blocked address 127.0.0.1 (loopback)"``. ``allow_networks``
    exempts addresses (see :func:`parse_allow_networks`); it never exempts ``0.0.0.0`` or ``::``.
    """
    try:
        addr = ip if isinstance(ip, IPv4Address | IPv6Address) else parse_ip(ip)
    except AddressParseError:
        return f"blocked address {ip!r} (not an IP address)"
    shown = str(addr)
    if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
        shown = f"{shown} = {addr}"
    if addr.is_unspecified:
        return f"blocked address {shown} (unspecified)"
    if _in_allowed(addr, allow_networks):
        return None
    category = address_category(addr)
    if category is None:
        return None
    return f"blocked address {shown} ({category})"


def parse_allow_networks(text: str | None) -> list[IPNetwork]:
    """Parse the comma-separated ``FETCH_ALLOW_NETWORKS`` setting into networks.

    Empty or missing text gives ``[]``. Host bits are tolerated (``127.0.0.1/8`` means
    ``127.0.0.0/8``); an IPv4-mapped IPv6 network is stored as its IPv4 network, matching how
    addresses are judged. Raises ValueError naming the bad entry.
    """
    networks: list[IPNetwork] = []
    for raw in (text or "").split(","):
        item = raw.strip()
        if not item:
            continue
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError as exc:
            raise ValueError(f"invalid network in FETCH_ALLOW_NETWORKS: {item!r}") from exc
        if isinstance(network, IPv6Network):
            mapped = network.network_address.ipv4_mapped
            if mapped is not None and network.prefixlen >= 96:
                network = IPv4Network(f"{mapped}/{network.prefixlen - 96}", strict=False)
        networks.append(network)
    return networks
