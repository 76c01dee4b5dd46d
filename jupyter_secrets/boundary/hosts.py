"""Where a secret may be sent: allowed-host patterns and address checks.

A secret travels only to hosts an admin listed for it. Two layers answer "may this request
go out?":

1. the *name* the URL gives must match one of the secret's allowed-host patterns
   (:func:`host_allowed`); and
2. every *address* that name resolves to must be acceptable (:func:`check_address`), and the
   proxy must connect to exactly the address it checked (``egress.transport`` resolves and
   pins), so a DNS answer that changes between the check and the connection (DNS rebinding)
   cannot steer the request to a cloud metadata service.

Loopback and private ranges are accepted: an admin who lists ``localhost:8000`` or an
intranet host means it. Link-local and cloud metadata addresses are refused unless the host
or address was listed exactly (not through a wildcard), and addresses that are never a real
upstream (unspecified, multicast, reserved) are always refused.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from typing import NamedTuple

import idna

__all__ = [
    "IPAddress",
    "address_refusal",
    "check_address",
    "explicitly_allowed",
    "host_allowed",
    "normalize_host",
    "normalize_host_pattern",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_HOST_LENGTH = 253
_EXPECTED = (
    "expected a host name like api.example.com, a wildcard like *.example.com, "
    "or an IP address like 10.0.0.5 or [2001:db8::1], optionally followed by :port"
)
_LABEL_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC_LABEL_RE = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")
_FORBIDDEN = {
    "/": "a path or URL",
    "@": "user information (user@host)",
    "?": "a query string",
    "#": "a fragment",
    "\\": "a backslash",
}

_METADATA = {
    ipaddress.ip_address("169.254.169.254"): "AWS/GCP/Azure/OpenStack metadata",
    ipaddress.ip_address("fd00:ec2::254"): "AWS IPv6 metadata",
    ipaddress.ip_address("100.100.100.200"): "Alibaba Cloud metadata",
    ipaddress.ip_address("168.63.129.16"): "Azure WireServer",
}
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")


class _Pattern(NamedTuple):
    host: str  # canonical: lower-case A-label, IPv6 in brackets; without "*." for wildcards
    wildcard: bool
    port: int | None


def _bad(pattern: str, problem: str) -> ValueError:
    return ValueError(f"Invalid allowed host {pattern!r}: {problem}; {_EXPECTED}.")


def _split_port(text: str, pattern: str) -> tuple[str, int | None]:
    """Split ``host[:port]``; bare IPv6 (two or more colons) has no port."""
    if text.startswith("["):
        close = text.find("]")
        if close == -1:
            raise _bad(pattern, "an IPv6 address opened with '[' must be closed with ']'")
        host, rest = text[: close + 1], text[close + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise _bad(pattern, "only ':port' may follow ']'")
        return host, _parse_port(rest[1:], pattern)
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, _parse_port(port, pattern)
    return text, None


def _parse_port(text: str, pattern: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise _bad(pattern, f"the port {text!r} is not a number")
    port = int(text)
    if not 1 <= port <= 65535:
        raise _bad(pattern, f"the port {port} is outside 1-65535")
    return port


def _canonical_ip(text: str) -> str | None:
    """Canonical spelling of an IP literal (IPv6 bracketed), or None for a host name."""
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        if text.startswith("["):
            raise ValueError(f"{bare!r} is not an IPv6 address") from None
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            raise ValueError("IPv6 zone ids such as %eth0 are not supported")
        return f"[{ip.compressed}]"
    if text.startswith("["):
        raise ValueError("brackets are only for IPv6 addresses")
    return str(ip)


def _canonical_name(text: str) -> str:
    """Lower-case A-label form of a host name, or ValueError saying what is wrong."""
    name = text[:-1] if text.endswith(".") else text
    if not name:
        raise ValueError("the host is empty")
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except UnicodeError as err:  # idna.IDNAError is a UnicodeError
            raise ValueError(f"it is not a valid internationalised host name ({err})") from None
    name = name.lower()
    if len(name) > MAX_HOST_LENGTH:
        raise ValueError(f"the host is longer than {MAX_HOST_LENGTH} characters")
    labels = name.split(".")
    for label in labels:
        if not label:
            raise ValueError("the host has an empty label ('..' or a leading dot)")
        if not _LABEL_RE.fullmatch(label):
            raise ValueError(
                f"the label {label!r} must be 1-63 letters, digits, '-' or '_' "
                "and must not start or end with '-'"
            )
    # A name whose last label is numeric is parsed as an IPv4 address by URL parsers
    # (127.1, 0x7f.1); only the canonical dotted quad is accepted, above.
    if _NUMERIC_LABEL_RE.fullmatch(labels[-1]):
        raise ValueError("it looks like an IP address but is not a plain dotted quad")
    return name


def _parse_pattern(pattern: str) -> _Pattern:
    if not isinstance(pattern, str):
        raise ValueError(f"Invalid allowed host {pattern!r}: it must be a string; {_EXPECTED}.")
    text = pattern.strip()
    if not text:
        raise _bad(pattern, "it is empty")
    if len(text) > MAX_HOST_LENGTH + 8:
        raise _bad(pattern, f"the host is longer than {MAX_HOST_LENGTH} characters")
    if "://" in text:
        raise _bad(pattern, "give the host only, without a scheme such as https://")
    if any(ch.isspace() for ch in text):
        raise _bad(pattern, "it contains spaces")
    for ch, what in _FORBIDDEN.items():
        if ch in text:
            raise _bad(pattern, f"it contains {what}")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise _bad(pattern, "it contains control characters")

    host, port = _split_port(text, pattern)
    wildcard = False
    if host.startswith("*."):
        wildcard, host = True, host[2:]
    if host == "*" or (wildcard and not host):
        raise _bad(pattern, "a lone '*' would allow every host; name the domain as *.example.com")
    if "*" in host:
        raise _bad(pattern, "'*' is only allowed as the whole first label, as in *.example.com")
    try:
        ip = _canonical_ip(host)
        if ip is not None:
            if wildcard:
                raise ValueError("a wildcard cannot be combined with an IP address")
            return _Pattern(ip, False, port)
        return _Pattern(_canonical_name(host), wildcard, port)
    except ValueError as err:
        raise _bad(pattern, str(err)) from None


def normalize_host_pattern(pattern: str) -> str:
    """Validate an allowed-host entry an admin typed and return its canonical spelling.

    Canonical means lower-case, IDNA A-labels, no trailing dot, IPv6 in brackets, so the
    stored list compares cleanly and shows what will actually be matched. Raises
    ``ValueError`` naming the problem and the expected form.
    """
    parsed = _parse_pattern(pattern)
    host = f"*.{parsed.host}" if parsed.wildcard else parsed.host
    return host if parsed.port is None else f"{host}:{parsed.port}"


def normalize_host(host: str) -> str:
    """Canonical spelling of a request's host (no port, no wildcard), for comparisons.

    Accepts what URL parsers hand out: ``Api.Example.COM.``, ``bücher.de``, ``::1`` or
    ``[::1]``. Raises ``ValueError`` for something that is not a host.
    """
    return _normalized(host) if isinstance(host, str) else _normalize_host(host)


# Both are pure and run on every proxied call (IDNA and IP parsing are not cheap); only
# strings are cached, so anything else still gets its ValueError.
@functools.lru_cache(maxsize=4096)
def _normalized(host: str) -> str:
    return _normalize_host(host)


@functools.lru_cache(maxsize=4096)
def _parsed(pattern: str) -> _Pattern:
    return _parse_pattern(pattern)


def _normalize_host(host: str) -> str:
    text = host.strip() if isinstance(host, str) else ""
    if not text or "*" in text or any(ch.isspace() or ch in _FORBIDDEN for ch in text):
        raise ValueError(f"{host!r} is not a host name or IP address")
    if ":" in text and not text.startswith("["):
        text = f"[{text}]"
    ip = _canonical_ip(text)
    return ip if ip is not None else _canonical_name(text)


def _patterns(patterns: Iterable[str]) -> list[_Pattern]:
    # Stored lists were validated on the way in; an entry that no longer parses (older
    # rules, hand-edited database) simply allows nothing rather than failing the request.
    parsed = []
    for pattern in patterns:
        try:
            parsed.append(_parsed(pattern) if isinstance(pattern, str)
                          else _parse_pattern(pattern))
        except ValueError:
            continue
    return parsed


def host_allowed(host: str, port: int, patterns: Iterable[str]) -> bool:
    """True when ``host:port`` matches an allowed-host pattern.

    ``*.example.com`` matches any subdomain at any depth but not ``example.com`` itself; a
    pattern without a port allows every port.
    """
    try:
        name = normalize_host(host)
    except ValueError:
        return False
    for pattern in _patterns(patterns):
        if pattern.port is not None and pattern.port != port:
            continue
        if pattern.wildcard:
            if name.endswith("." + pattern.host):
                return True
        elif name == pattern.host:
            return True
    return False


def explicitly_allowed(host: str | IPAddress, patterns: Iterable[str]) -> bool:
    """True only when ``host`` (a name or an IP) is listed exactly, not via a wildcard.

    This is the admin's deliberate opt-in that lets a request reach a link-local or cloud
    metadata address: a wildcard such as ``*.example.com`` must never open that door, since
    anyone controlling a subdomain's DNS could point it there.
    """
    if not isinstance(host, str):
        host = str(_without_scope(host))
    try:
        name = normalize_host(host)
    except ValueError:
        return False
    return any(not p.wildcard and p.host == name for p in _patterns(patterns))


def _without_scope(ip: IPAddress) -> IPAddress:
    """Drop an IPv6 zone id (fe80::1%eth0): it picks an interface, not a different host."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        return ipaddress.IPv6Address(int(ip))
    return ip


def _unwrap(ip: IPAddress) -> IPAddress:
    """The IPv4 address hidden in an IPv4-mapped (::ffff:a.b.c.d) or NAT64 IPv6 address."""
    ip = _without_scope(ip)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def _classify(ip: IPAddress, allow_private: bool) -> tuple[str, bool] | None:
    """``(reason, overridable)`` when ``ip`` must be refused; overridable by exact listing."""
    ip = _unwrap(ip)
    if ip in _METADATA:
        return f"{ip} is a cloud metadata address ({_METADATA[ip]})", True
    if ip.is_unspecified or ip in _THIS_NETWORK:
        return f"{ip} is an unspecified ('this host') address", False
    if ip.is_link_local:
        return f"{ip} is a link-local address", True
    if ip.is_multicast:
        return f"{ip} is a multicast address", False
    # Before "reserved": ::1 sits inside the reserved ::/8 block but is plain loopback.
    if ip.is_loopback:
        return None if allow_private else (f"{ip} is a loopback address", True)
    # Before "private": Python counts 240.0.0.0/4 and 255.255.255.255 as private too.
    if ip.is_reserved or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local):
        return f"{ip} is a reserved address", False
    if not allow_private and (ip.is_private or ip in _SHARED):
        return f"{ip} is a private address", True
    return None


def check_address(ip: IPAddress, allow_private: bool = True) -> str | None:
    """Return why the proxy must not connect to ``ip``, or None when it may.

    IPv4-mapped and NAT64 IPv6 addresses are judged by the IPv4 address they carry.
    ``allow_private=False`` additionally refuses loopback, private and shared (CGNAT) ranges;
    the default keeps them reachable because an admin-listed local upstream is legitimate.
    """
    verdict = _classify(ip, allow_private)
    return None if verdict is None else verdict[0]


def address_refusal(
    ip: IPAddress,
    host: str,
    patterns: Iterable[str],
    *,
    allow_private: bool = True,
) -> str | None:
    """The whole address decision for one resolved ``ip`` of the requested ``host``.

    Like :func:`check_address`, but link-local, metadata (and, with ``allow_private=False``,
    private) addresses pass when ``host`` or ``ip`` is listed exactly in ``patterns``.
    Unspecified, multicast and reserved addresses are refused whatever the list says.
    """
    verdict = _classify(ip, allow_private)
    if verdict is None:
        return None
    reason, overridable = verdict
    patterns = list(patterns)
    if overridable and (explicitly_allowed(host, patterns) or explicitly_allowed(ip, patterns)):
        return None
    return reason
