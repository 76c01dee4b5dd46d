"""Where an outbound connection may go: DNS pinning and address checks on every connection.

The client (``http1.py``) opens every connection here: the host is resolved once, every
address is checked, and the socket goes to a checked address (never to the name again),
which closes the DNS-rebinding gap. It runs for every new connection, so redirect hops and
pooled reconnects are checked too. Which hosts may reach link-local/metadata addresses
depends on the call, so the allowlist travels in a context variable set around each request.
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import httpx

from ..boundary.hosts import IPAddress, address_refusal, normalize_host
from ..errors import EgressRefused
from .asyncio_stream import AsyncioStream, connect

_allowlist: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "jupyter_secrets_allowlist", default=()
)


@contextmanager
def address_policy(patterns: Iterable[str]) -> Iterator[None]:
    """Patterns whose exact entries may reach link-local/metadata addresses, for this call."""
    token = _allowlist.set(tuple(patterns))
    try:
        yield
    finally:
        _allowlist.reset(token)


class HostResolutionError(OSError):
    """A host name did not resolve; the message names the host (host names are not secret)."""


async def resolve_pinned(host: str, port: int) -> list[IPAddress]:
    """Resolve ``host`` without blocking the event loop, for check-then-connect pinning.

    Returns unique addresses in resolver order; an IP literal resolves to itself. The caller
    checks each address and connects to one of them (not to the name again), so a second DNS
    answer can never bypass the check.
    """
    name = normalize_host(host)
    if name.startswith("["):
        return [ipaddress.IPv6Address(name[1:-1])]
    try:
        return [ipaddress.IPv4Address(name)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(
            name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except socket.gaierror as err:
        raise HostResolutionError(f"Could not resolve host {name!r}: {err.strerror}") from err
    addresses: list[IPAddress] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = ipaddress.ip_address(str(sockaddr[0]))
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise HostResolutionError(f"Host {name!r} resolved to no IPv4 or IPv6 address")
    return addresses


def reuse_refusal(ip: IPAddress, host: str) -> str | None:
    """Why this call may not send over a kept-alive connection to ``ip`` (opened for
    ``host`` by an earlier call, under that call's policy), or None.

    A metadata or link-local address passes only for hosts listed exactly by the secrets in
    play, and those differ between calls to the same host: the pool asks before each reuse.
    """
    return address_refusal(ip, host, _allowlist.get())


async def connect_pinned(
    host: str, port: int, *, timeout: float | None
) -> tuple[AsyncioStream, IPAddress]:
    """Resolve ``host``, check every address against this call's policy, connect to a
    checked address (never to the name again); the stream and the address it reached."""
    try:
        addresses = await resolve_pinned(host, port)
    except HostResolutionError as error:
        raise httpx.ConnectError(str(error)) from None
    patterns = _allowlist.get()
    refusals = [address_refusal(ip, host, patterns) for ip in addresses]
    allowed = [ip for ip, reason in zip(addresses, refusals, strict=True) if reason is None]
    if not allowed:
        raise EgressRefused(
            f"Refused to connect to {host}: it resolves to a {refusals[0]} address. List "
            "the host exactly in the secret's allowed hosts if this is intended."
        )
    last_error: Exception | None = None
    for ip in allowed:
        try:
            return await connect(str(ip), port, timeout=timeout), ip
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            last_error = error
    assert last_error is not None
    raise last_error
