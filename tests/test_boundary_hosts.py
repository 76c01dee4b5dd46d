"""Spec of the destination policy: which hosts a secret may go to, which addresses never.

No test touches the network: resolution is checked with IP literals, ``localhost`` (from
/etc/hosts) and a stand-in resolver.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import pytest

from jupyter_secrets.boundary.hosts import (
    address_refusal,
    check_address,
    explicitly_allowed,
    host_allowed,
    normalize_host,
    normalize_host_pattern,
)
from jupyter_secrets.egress.transport import HostResolutionError, resolve_pinned

ip = ipaddress.ip_address


class TestNormalizeHostPattern:
    @pytest.mark.parametrize(
        ("typed", "stored"),
        [
            ("api.example.com", "api.example.com"),
            ("API.Example.COM", "api.example.com"),
            ("api.example.com.", "api.example.com"),
            ("  api.example.com  ", "api.example.com"),
            ("api.example.com:8443", "api.example.com:8443"),
            ("*.example.com", "*.example.com"),
            ("*.Example.com:443", "*.example.com:443"),
            ("localhost", "localhost"),
            ("localhost:8000", "localhost:8000"),
            ("my_host.internal", "my_host.internal"),
            ("bücher.de", "xn--bcher-kva.de"),
            ("*.BÜCHER.de", "*.xn--bcher-kva.de"),
            ("10.0.0.5", "10.0.0.5"),
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("::1", "[::1]"),
            ("[::1]", "[::1]"),
            ("[::1]:8080", "[::1]:8080"),
            ("2001:DB8:0:0::1", "[2001:db8::1]"),
            ("[2001:db8::1]:443", "[2001:db8::1]:443"),
        ],
    )
    def test_valid_entries_are_canonicalised(self, typed: str, stored: str) -> None:
        assert normalize_host_pattern(typed) == stored

    def test_canonical_form_is_a_fixed_point(self) -> None:
        for typed in ("API.example.com.", "*.Bücher.de:443", "::1", "[::1]:80"):
            once = normalize_host_pattern(typed)
            assert normalize_host_pattern(once) == once

    @pytest.mark.parametrize(
        ("typed", "problem"),
        [
            ("", "empty"),
            ("   ", "empty"),
            ("*", "lone '*'"),
            ("*.", "lone '*'"),
            ("https://api.example.com", "without a scheme"),
            ("api.example.com/v1", "path"),
            ("user@api.example.com", "user information"),
            ("api.example.com?x=1", "query"),
            ("api.example.com#x", "fragment"),
            ("api example.com", "spaces"),
            ("api.*.example.com", "first label"),
            ("*example.com", "first label"),
            ("**.example.com", "first label"),
            ("*.10.0.0.1", "wildcard cannot be combined"),
            ("api..example.com", "empty label"),
            (".example.com", "empty label"),
            ("-api.example.com", "must not start or end with '-'"),
            ("a" * 64 + ".com", "1-63"),
            ("api.example.com:0", "outside 1-65535"),
            ("api.example.com:65536", "outside 1-65535"),
            ("api.example.com:https", "not a number"),
            ("api.example.com:", "not a number"),
            ("[::1", "closed with ']'"),
            ("[::1]x", "only ':port'"),
            ("[10.0.0.1]", "only for IPv6"),
            ("[not-ipv6]", "not an IPv6 address"),
            ("fe80::1%eth0", "zone ids"),
            ("1.2.3", "plain dotted quad"),
            ("127.1", "plain dotted quad"),
            ("0x7f.0.0.1", "plain dotted quad"),
            ("010.0.0.1", "plain dotted quad"),
            ("api.example.com\x00", "control characters"),
        ],
    )
    def test_invalid_entries_say_what_is_wrong_and_what_is_expected(
        self, typed: str, problem: str
    ) -> None:
        with pytest.raises(ValueError) as caught:
            normalize_host_pattern(typed)
        message = str(caught.value)
        assert problem in message
        assert "expected a host name like api.example.com" in message

    def test_length_limit_is_253(self) -> None:
        labels = ["a" * 63] * 3 + ["b" * 61]  # 63*3 + 61 + 3 dots = 253
        longest = ".".join(labels)
        assert len(longest) == 253
        assert normalize_host_pattern(longest) == longest
        with pytest.raises(ValueError, match="longer than 253"):
            normalize_host_pattern("c" + longest)

    def test_non_string_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="must be a string"):
            normalize_host_pattern(42)  # type: ignore[arg-type]


class TestHostAllowed:
    PATTERNS = ("api.example.com", "*.corp.example", "localhost:8000", "[::1]", "10.0.0.5:443")

    @pytest.mark.parametrize(
        ("host", "port"),
        [
            ("api.example.com", 443),
            ("api.example.com", 8080),  # no port in the pattern: any port
            ("API.EXAMPLE.COM.", 443),
            ("a.corp.example", 443),
            ("deep.a.corp.example", 443),
            ("localhost", 8000),
            ("::1", 9999),
            ("[::1]", 9999),
            ("10.0.0.5", 443),
        ],
    )
    def test_allowed(self, host: str, port: int) -> None:
        assert host_allowed(host, port, self.PATTERNS)

    @pytest.mark.parametrize(
        ("host", "port"),
        [
            ("corp.example", 443),  # a wildcard does not match its apex
            ("evilcorp.example", 443),
            ("api.example.com.evil.org", 443),
            ("evil-api.example.com", 443),
            ("example.com", 443),
            ("localhost", 8001),
            ("10.0.0.5", 80),
            ("127.0.0.1", 8000),  # names and addresses are not interchangeable
            ("::ffff:10.0.0.5", 443),
            ("", 443),
            ("*.corp.example", 443),
            ("api.example.com/x", 443),
        ],
    )
    def test_refused(self, host: str, port: int) -> None:
        assert not host_allowed(host, port, self.PATTERNS)

    def test_unicode_host_matches_its_punycode_pattern(self) -> None:
        assert host_allowed("bücher.de", 443, [normalize_host_pattern("bücher.de")])
        assert host_allowed("xn--bcher-kva.de", 443, ["bücher.de"])

    def test_invalid_stored_entries_allow_nothing(self) -> None:
        assert not host_allowed("api.example.com", 443, ["*", "https://api.example.com"])
        assert host_allowed("api.example.com", 443, ["*", "api.example.com"])

    def test_empty_list_allows_nothing(self) -> None:
        assert not host_allowed("api.example.com", 443, [])


class TestExplicitlyAllowed:
    def test_exact_entries_count(self) -> None:
        patterns = ["169.254.169.254", "metadata.internal:80", "[fe80::1]"]
        assert explicitly_allowed("169.254.169.254", patterns)
        assert explicitly_allowed(ip("169.254.169.254"), patterns)
        assert explicitly_allowed("metadata.internal", patterns)
        assert explicitly_allowed("fe80::1", patterns)
        assert explicitly_allowed(ipaddress.IPv6Address("fe80::1%eth0"), patterns)

    def test_wildcards_never_count(self) -> None:
        assert not explicitly_allowed("metadata.corp.example", ["*.corp.example"])

    def test_other_hosts_do_not_count(self) -> None:
        assert not explicitly_allowed("169.254.169.254", ["api.example.com"])
        assert not explicitly_allowed("not a host", ["api.example.com"])


class TestCheckAddress:
    @pytest.mark.parametrize(
        ("address", "reason"),
        [
            ("169.254.169.254", "cloud metadata"),
            ("fd00:ec2::254", "cloud metadata"),
            ("100.100.100.200", "cloud metadata"),
            ("168.63.129.16", "cloud metadata"),
            ("::ffff:169.254.169.254", "cloud metadata"),  # IPv4-mapped is unwrapped
            ("64:ff9b::a9fe:a9fe", "cloud metadata"),  # NAT64 of 169.254.169.254
            ("169.254.1.1", "link-local"),
            ("fe80::1", "link-local"),
            ("fe80::1%eth0", "link-local"),
            ("::ffff:169.254.1.1", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("::", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("ff02::1", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "reserved"),
            ("fec0::1", "reserved"),
        ],
    )
    def test_refused_with_a_reason(self, address: str, reason: str) -> None:
        refusal = check_address(ip(address), allow_private=True)
        assert refusal is not None
        assert reason in refusal

    @pytest.mark.parametrize(
        "address",
        [
            "127.0.0.1",
            "::1",
            "::ffff:127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.10",
            "fd12:3456::1",
            "100.64.0.1",
            "8.8.8.8",
            "2606:4700:4700::1111",
        ],
    )
    def test_loopback_private_and_public_are_reachable_by_default(self, address: str) -> None:
        assert check_address(ip(address), allow_private=True) is None
        assert check_address(ip(address)) is None

    @pytest.mark.parametrize(
        "address", ["127.0.0.1", "::1", "10.1.2.3", "192.168.1.10", "fd12::1", "100.64.0.1"]
    )
    def test_allow_private_false_refuses_local_ranges(self, address: str) -> None:
        assert check_address(ip(address), allow_private=False) is not None

    def test_public_stays_reachable_without_private(self) -> None:
        assert check_address(ip("8.8.8.8"), allow_private=False) is None


class TestAddressRefusal:
    def test_metadata_needs_an_exact_listing(self) -> None:
        metadata = ip("169.254.169.254")
        assert address_refusal(metadata, "evil.example.com", ["*.example.com"])
        assert address_refusal(metadata, "169.254.169.254", ["169.254.169.254"]) is None
        assert address_refusal(metadata, "meta.internal", ["meta.internal"]) is None

    def test_link_local_passes_when_the_address_is_listed(self) -> None:
        assert address_refusal(ip("169.254.3.4"), "box.local", ["box.local"]) is None
        assert address_refusal(ip("169.254.3.4"), "other.local", ["169.254.3.4"]) is None
        assert address_refusal(ip("169.254.3.4"), "other.local", ["box.local"])

    @pytest.mark.parametrize("address", ["0.0.0.0", "224.0.0.1", "240.0.0.1"])
    def test_never_useful_addresses_are_refused_even_when_listed(self, address: str) -> None:
        assert address_refusal(ip(address), address, [address])

    def test_ordinary_addresses_pass(self) -> None:
        assert address_refusal(ip("127.0.0.1"), "localhost", ["localhost"]) is None


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


class TestResolvePinned:
    @pytest.mark.parametrize(
        ("host", "expected"),
        [("127.0.0.1", "127.0.0.1"), ("::1", "::1"), ("[::1]", "::1"), ("10.0.0.5", "10.0.0.5")],
    )
    def test_ip_literals_resolve_to_themselves(self, host: str, expected: str) -> None:
        assert _run(resolve_pinned(host, 80)) == [ip(expected)]

    def test_localhost(self) -> None:
        addresses = _run(resolve_pinned("localhost", 80))
        assert addresses
        assert all(address.is_loopback for address in addresses)

    def test_uses_the_loops_resolver_and_deduplicates(self) -> None:
        calls: list[tuple[Any, ...]] = []

        async def fake_getaddrinfo(host: str, port: int, **kwargs: Any) -> list[Any]:
            calls.append((host, port, kwargs))
            tcp = (socket.SOCK_STREAM, socket.IPPROTO_TCP, "")
            return [
                (socket.AF_INET, *tcp, ("203.0.113.7", port)),
                (socket.AF_INET6, *tcp, ("2001:db8::7", port, 0, 0)),
                (socket.AF_INET, *tcp, ("203.0.113.7", port)),
            ]

        async def resolve() -> list[Any]:
            loop = asyncio.get_running_loop()
            loop.getaddrinfo = fake_getaddrinfo  # type: ignore[method-assign]
            return await resolve_pinned("API.Bücher.de.", 443)

        assert _run(resolve()) == [ip("203.0.113.7"), ip("2001:db8::7")]
        assert calls[0][:2] == ("api.xn--bcher-kva.de", 443)
        assert calls[0][2]["type"] == socket.SOCK_STREAM

    def test_resolution_failure_names_the_host(self) -> None:
        async def failing_getaddrinfo(*_args: Any, **_kwargs: Any) -> list[Any]:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        async def resolve() -> list[Any]:
            loop = asyncio.get_running_loop()
            loop.getaddrinfo = failing_getaddrinfo  # type: ignore[method-assign]
            return await resolve_pinned("nowhere.example", 443)

        with pytest.raises(HostResolutionError, match=r"nowhere\.example"):
            _run(resolve())

    def test_not_a_host(self) -> None:
        with pytest.raises(ValueError):
            _run(resolve_pinned("a b", 80))


class TestNormalizeHost:
    def test_request_hosts(self) -> None:
        assert normalize_host("API.example.com.") == "api.example.com"
        assert normalize_host("::1") == "[::1]"
        assert normalize_host("[::1]") == "[::1]"
        assert normalize_host("bücher.de") == "xn--bcher-kva.de"

    @pytest.mark.parametrize("bad", ["", "*.example.com", "a b", "host:80", "x/y"])
    def test_rejects_non_hosts(self, bad: str) -> None:
        with pytest.raises(ValueError):
            normalize_host(bad)
