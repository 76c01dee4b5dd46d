"""The shared outbound HTTP client, with DNS pinning and address checks on every connection.

httpx resolves and connects inside httpcore. A network backend that resolves the host
itself, checks every address, and then connects to the checked address (never to the name
again) closes the DNS-rebinding gap, and it runs for every new connection, so redirect hops
and pooled reconnects are checked too. Its connections are ``asyncio_stream`` streams, not
AnyIO's (the cheaper path). TLS still verifies and sends SNI for the host name.
Which hosts may reach link-local/metadata addresses depends on the call, so the allowlist
travels in a context variable set around each request.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import ipaddress
import socket
import typing
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from http.cookiejar import Cookie, CookieJar
from typing import Any

import httpcore
import httpx

from ..boundary.hosts import IPAddress, address_refusal, normalize_host
from ..errors import EgressRefused
from .asyncio_stream import AsyncioBackend

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


class PinnedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._inner = AsyncioBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await resolve_pinned(host, port)
        except HostResolutionError as error:
            raise httpcore.ConnectError(str(error)) from None
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
                return await self._inner.connect_tcp(
                    str(ip), port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
        assert last_error is not None
        raise last_error

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class NoCookies(CookieJar):
    """A jar that keeps nothing: the client is shared by every caller, so a cookie one
    caller's upstream set would otherwise go out with the next caller's calls (a session
    handed from user to user). Callers' own cookies are never forwarded either."""

    def set_cookie(self, cookie: Cookie) -> None:
        return None

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


class _Pool(httpcore.AsyncConnectionPool):
    """httpcore's pool, minus an AnyIO cancel scope entered on every request to close
    nothing (it closes expired connections, usually none): a tenth of the client's CPU."""

    async def _close_connections(self, closing: list[Any]) -> None:
        if closing:
            await super()._close_connections(closing)


@functools.lru_cache(maxsize=1024)
def _parsed_url(url: str) -> httpx.URL:
    """httpx parses URLs in Python, at a tenth of a call's CPU; a URL object is immutable."""
    return httpx.URL(url)


class OutboundClient(httpx.AsyncClient):
    """httpx's client with the proxy's own way to build and send.

    Requests and responses stay httpx's (``build_one`` makes what ``build_request`` makes of
    an absolute URL); the exchange goes straight to the pooled transport (``send_one``),
    skipping what ``send`` adds that the proxy must not have (a cookie jar shared by every
    caller) or does itself (redirects, followed hop by hop after each hop's destination is
    checked). On loopback the two save about a fifth of a call's CPU.
    """

    def __init__(self, *, transport: httpx.AsyncHTTPTransport, **kwargs: Any) -> None:
        super().__init__(transport=transport, **kwargs)
        self._pooled = transport
        self._defaults = [(k.encode("ascii"), v.encode("ascii")) for k, v in self.headers.items()]
        self._extensions = {"timeout": self.timeout.as_dict()}

    def build_one(
        self, method: str, url: str, headers: list[tuple[bytes, bytes]], content: bytes | None,
        *, template_url: bool = False,
    ) -> httpx.Request:
        """What ``build_request`` makes of an absolute URL, without its merging machinery
        (a third of a call's CPU before the send): the client's default headers the
        caller's do not replace, then the caller's; the client's timeouts.

        ``template_url``: the URL is a connection's or caller's template with nothing filled
        in, so its parsed form may be reused (only without a query: a secret never reaches
        this cache, and neither does a caller's query string)."""
        given = {name.lower() for name, _ in headers}
        defaults = [(k, v) for k, v in self._defaults if k.lower() not in given]
        parsed = _parsed_url(url) if template_url and "?" not in url else url
        return httpx.Request(method, parsed, headers=[*defaults, *headers], content=content,
                             extensions=dict(self._extensions))

    async def send_one(self, request: httpx.Request) -> httpx.Response:
        """One request, its response streamed (close it): no redirects, no cookies."""
        response = await self._pooled.handle_async_request(request)
        response.request = request
        return response


def build_client(*, connect_timeout: float, idle_timeout: float) -> OutboundClient:
    """One pooled client for every outbound call: no env proxies/netrc, no auto-redirects,
    no cookie jar."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx does not expose httpcore's network_backend; swap in a pool that uses ours.
    transport._pool = _Pool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=100,
        max_keepalive_connections=100,  # as many as may be open: kernels call in bursts
        keepalive_expiry=5.0,
        network_backend=PinnedBackend(),
    )
    return OutboundClient(
        transport=transport,
        trust_env=False,
        cookies=NoCookies(),
        follow_redirects=False,
        timeout=httpx.Timeout(connect=connect_timeout, read=idle_timeout, write=60.0,
                              pool=connect_timeout),
    )
