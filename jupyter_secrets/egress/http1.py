"""The proxy's outbound HTTP/1.1 client: h11 on asyncio streams, one pool for every call.

Every proxied call goes through here, so its cost is added to every call. httpx's client
stack (request and response models, httpcore's pool, traces and locks, AnyIO) cost about
twice what the HTTP exchange itself costs on loopback (benchmarks/README.md). This client
keeps what matters and nothing else:

- h11 parses and frames HTTP/1.1 (the parser httpx uses; nothing hand-written);
- a request leaves in one write (head and body together);
- connections are kept alive per origin and opened only through ``connect_pinned`` (DNS
  pinning and address checks on every new connection, redirect hops included);
- TLS verifies the certificate and the host name (certifi's roots, as httpx);
- no cookies, no redirects (the egress layer follows them hop by hop, after checking each
  destination), no proxies from the environment, no netrc;
- errors are httpx's exception classes, so callers handle one family.

Responses are streamed; reading is flow-controlled by the stream. Bodies are decoded from
gzip and deflate (the only encodings the proxy asks for) in bounded steps, so a small
compressed body cannot expand into one huge chunk.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import h11
import httpx

from .._version import __version__
from ..boundary.hosts import IPAddress
from .asyncio_stream import AsyncioStream
from .transport import connect_pinned, reuse_refusal

READ_SIZE = 64 * 1024
DECODED_STEP = 256 * 1024  # at most this many decoded bytes per step of a compressed body
SWEEP_INTERVAL_S = 1.0
_CLIENT_SET = frozenset({b"host", b"content-length", b"transfer-encoding", b"connection"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
DECODABLE_ENCODINGS = ("gzip", "deflate")
Origin = tuple[str, str, int]  # scheme, host (ASCII), port


@dataclass(frozen=True)
class Timeouts:
    connect: float  # TCP connect and TLS handshake; also the wait for a free connection
    read: float  # silence allowed between two reads
    write: float = 60.0  # a peer that stops reading the request


@dataclass
class OutboundRequest:
    method: str
    url: httpx.URL
    headers: list[tuple[bytes, bytes]]
    content: bytes | None = None


class ResponseHeaders:
    """A response's headers: names lower-cased, order and repeats kept, values decoded as
    httpx decodes them (ASCII, else UTF-8, else Latin-1, for the whole set)."""

    __slots__ = ("_items",)

    def __init__(self, raw: Sequence[tuple[bytes, bytes]]) -> None:
        encoding = "iso-8859-1"
        for candidate in ("ascii", "utf-8"):
            try:
                for name, value in raw:
                    name.decode(candidate)
                    value.decode(candidate)
            except UnicodeDecodeError:
                continue
            encoding = candidate
            break
        self._items = [(n.decode(encoding).lower(), v.decode(encoding)) for n, v in raw]

    def get(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        values = [v for n, v in self._items if n == name]
        return ", ".join(values) if values else default

    def get_list(self, name: str, *, split_commas: bool = False) -> list[str]:
        name = name.lower()
        values = [v for n, v in self._items if n == name]
        if not split_commas:
            return values
        return [part.strip() for v in values for part in v.split(",")]

    def multi_items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n == name.lower() for n, _ in self._items)


@dataclass(eq=False)
class _Connection:
    origin: Origin
    stream: AsyncioStream
    address: IPAddress  # where connect_pinned connected it (checked again on each reuse)
    protocol: h11.Connection = field(default_factory=lambda: h11.Connection(h11.CLIENT))
    idle_since: float = 0.0


class OutboundResponse:
    """A streamed response. Read it with :meth:`aiter_bytes` (or :meth:`aread`), then
    :meth:`aclose` it: a fully read response gives its connection back to the pool."""

    def __init__(self, pool: ConnectionPool, connection: _Connection, head: h11.Response,
                 request: OutboundRequest) -> None:
        self._pool = pool
        self._connection: _Connection | None = connection
        self._complete = False
        self.request = request
        self.url = request.url
        self.status_code = head.status_code
        self.reason_phrase = head.reason.decode("ascii", "replace")
        self.headers = ResponseHeaders(head.headers)
        self.num_bytes_downloaded = 0

    @property
    def is_redirect(self) -> bool:
        return self.status_code in _REDIRECTS and "location" in self.headers

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body as it arrives on the wire (still encoded)."""
        connection = self._connection
        if connection is None:
            raise httpx.StreamClosed()
        protocol, stream, timeout = connection.protocol, connection.stream, self._pool.read_s
        while True:
            try:
                event = protocol.next_event()
                if event is h11.NEED_DATA:
                    protocol.receive_data(await stream.read(READ_SIZE, timeout))
                    continue
            except h11.RemoteProtocolError as error:
                raise httpx.RemoteProtocolError(f"The server broke HTTP: {error}") from None
            kind = type(event)
            if kind is h11.Data:
                data = bytes(event.data)  # type: ignore[union-attr]
                self.num_bytes_downloaded += len(data)
                yield data
            elif kind is h11.EndOfMessage:
                self._complete = True
                return
            else:  # ConnectionClosed before the end of the message
                raise httpx.RemoteProtocolError(
                    "The server closed the connection before the whole body arrived.")

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body decoded from its Content-Encoding (gzip, deflate or none)."""
        codings = [c for c in self.headers.get_list("content-encoding", split_commas=True)
                   if c and c.lower() != "identity"]
        if not codings:
            async for chunk in self.aiter_raw():
                yield chunk
            return
        decoders = [_Decoder(c.lower()) for c in reversed(codings)]
        async for chunk in self.aiter_raw():
            for piece in _decode(decoders, chunk):
                yield piece
        for piece in _decode(decoders, b"", final=True):
            yield piece

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        protocol = connection.protocol
        if (self._complete and protocol.our_state is h11.DONE
                and protocol.their_state is h11.DONE):
            protocol.start_next_cycle()
            self._pool.give_back(connection)
        else:  # the rest of the body would arrive on the next call's connection
            self._pool.discard(connection)


class _Decoder:
    """One Content-Encoding, decoded in steps of at most ``DECODED_STEP`` bytes."""

    def __init__(self, coding: str) -> None:
        if coding not in DECODABLE_ENCODINGS:
            raise httpx.DecodingError(f"Content-Encoding {coding!r} is not supported.")
        self.coding = coding
        wbits = zlib.MAX_WBITS | 16 if coding == "gzip" else zlib.MAX_WBITS
        self._zlib = zlib.decompressobj(wbits)
        self._first = coding == "deflate"  # deflate is zlib-wrapped, or raw in the wild

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        try:
            while data:
                piece = self._inflate(data)
                if piece:
                    out.append(piece)
                data = self._zlib.unconsumed_tail
        except zlib.error as error:
            raise httpx.DecodingError(f"The body is not valid {self.coding}: {error}") from None
        return out

    def _inflate(self, data: bytes) -> bytes:
        if self._first:
            self._first = False
            try:
                return self._zlib.decompress(data, DECODED_STEP)
            except zlib.error:
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._zlib.decompress(data, DECODED_STEP)

    def flush(self) -> list[bytes]:
        try:
            tail = self._zlib.flush()
        except zlib.error as error:
            raise httpx.DecodingError(f"The body is not valid {self.coding}: {error}") from None
        return [tail] if tail else []


def _decode(decoders: list[_Decoder], chunk: bytes, *, final: bool = False) -> list[bytes]:
    """Push ``chunk`` through every decoder, outermost encoding first."""
    pieces = [chunk] if chunk else []
    for decoder in decoders:
        out: list[bytes] = []
        for piece in pieces:
            out.extend(decoder.feed(piece))
        if final:
            out.extend(decoder.flush())
        pieces = out
    return pieces


class ConnectionPool:
    """Keep-alive HTTP/1.1 connections per origin; at most ``max_connections`` open.

    An idle connection is reused (newest first) unless it has been idle longer than
    ``keepalive_s`` or the server has closed it or sent something unasked, and only when
    this call's own address policy admits the address it reached (a metadata address one
    secret lists exactly stays closed to the others); a new one is opened through
    ``connect_pinned`` (and TLS for https). When every slot is taken, the
    oldest idle connection of another origin makes room; if none is idle, the call waits
    for a slot up to the connect timeout.
    """

    def __init__(self, ssl_context: ssl.SSLContext, timeouts: Timeouts, *,
                 max_connections: int = 100, keepalive_s: float = 5.0) -> None:
        self.ssl_context = ssl_context
        self.timeouts = timeouts
        self.read_s = timeouts.read
        self.max_connections = max_connections
        self.keepalive_s = keepalive_s
        self._idle: dict[Origin, list[_Connection]] = {}
        self._open = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._last_sweep = 0.0

    @property
    def open_connections(self) -> int:
        return self._open

    async def acquire(self, origin: Origin) -> _Connection:
        """A connection for one exchange: an idle one of ``origin``, or a new one."""
        now = time.monotonic()
        if now - self._last_sweep > SWEEP_INTERVAL_S:
            self._sweep(now)
        idle = self._idle.get(origin)
        while idle:
            connection = idle[-1]
            if now - connection.idle_since <= self.keepalive_s \
                    and not connection.stream.is_readable:
                if reuse_refusal(connection.address, origin[1]) is not None:
                    break  # not for this call: connecting anew refuses it, with the reason
                return idle.pop()
            idle.pop()
            self.discard(connection)
        await self._reserve()
        try:
            return await self._connect(origin)
        except BaseException:
            self._release()
            raise

    def give_back(self, connection: _Connection) -> None:
        connection.idle_since = time.monotonic()
        self._idle.setdefault(connection.origin, []).append(connection)
        if self._waiting:  # a caller waits for a slot: this idle connection can make room
            self._evict_oldest_idle()

    def discard(self, connection: _Connection) -> None:
        connection.stream.close()
        self._release()

    async def aclose(self) -> None:
        idle = [c for conns in self._idle.values() for c in conns]
        self._idle.clear()
        for connection in idle:
            await connection.stream.aclose()
            self._release()

    async def _connect(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        stream, address = await connect_pinned(host, port, timeout=self.timeouts.connect)
        if scheme == "https":
            stream = await stream.start_tls(self.ssl_context, server_hostname=host,
                                            timeout=self.timeouts.connect)
        return _Connection(origin, stream, address)

    async def _reserve(self) -> None:
        while self._open >= self.max_connections:
            if self._evict_oldest_idle():
                continue
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await asyncio.wait_for(waiter, self.timeouts.connect)
            except (TimeoutError, asyncio.TimeoutError):
                raise httpx.PoolTimeout(
                    f"All {self.max_connections} outbound connections stayed busy for "
                    f"{self.timeouts.connect:g} s.") from None
            finally:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
        self._open += 1

    def _release(self) -> None:
        self._open -= 1
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    def _evict_oldest_idle(self) -> bool:
        oldest: _Connection | None = None
        for conns in self._idle.values():
            if conns and (oldest is None or conns[0].idle_since < oldest.idle_since):
                oldest = conns[0]
        if oldest is None:
            return False
        self._idle[oldest.origin].remove(oldest)
        self.discard(oldest)
        return True

    def _sweep(self, now: float) -> None:
        """Close idle connections past their keep-alive (their sockets would linger)."""
        self._last_sweep = now
        for origin, conns in list(self._idle.items()):
            keep = [c for c in conns if now - c.idle_since <= self.keepalive_s
                    and not c.stream.is_readable]
            for connection in conns:
                if connection not in keep:
                    self.discard(connection)
            if keep:
                self._idle[origin] = keep
            else:
                del self._idle[origin]


@functools.lru_cache(maxsize=1024)
def _parsed_url(url: str) -> httpx.URL:
    """httpx parses URLs in Python, at a tenth of a call's CPU; a URL object is immutable."""
    return httpx.URL(url)


class OutboundClient:
    """Builds and sends the proxy's outbound requests (one exchange each; see the module)."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.user_agent = f"jupyter-secrets/{__version__}".encode("ascii")

    def build_one(
        self, method: str, url: str, headers: list[tuple[bytes, bytes]], content: bytes | None,
        *, template_url: bool = False,
    ) -> OutboundRequest:
        """The request for an absolute URL, with the caller's headers in order.

        ``template_url``: the URL is a connection's or caller's template with nothing filled
        in, so its parsed form may be reused (only without a query: a secret never reaches
        this cache, and neither does a caller's query string). Parsing is httpx's (IDNA
        hosts, percent-encoding of what a URL cannot carry raw)."""
        parsed = _parsed_url(url) if template_url and "?" not in url else httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise httpx.UnsupportedProtocol(f"Only http(s) URLs with a host can be called "
                                            f"(got {parsed.scheme or 'no scheme'}).")
        return OutboundRequest(method.upper(), parsed, headers, content)

    async def send_one(self, request: OutboundRequest) -> OutboundResponse:
        """Send ``request``; the response is streamed (close it)."""
        url = request.url
        origin = (url.scheme, url.raw_host.decode("ascii"),
                  url.port or (443 if url.scheme == "https" else 80))
        connection = await self.pool.acquire(origin)
        try:
            await connection.stream.write(self._encode(request, connection.protocol),
                                          self.pool.timeouts.write)
            head = await self._response_head(connection)
        except BaseException as error:
            self.pool.discard(connection)
            if isinstance(error, h11.LocalProtocolError):
                raise httpx.LocalProtocolError(f"The request is not valid HTTP: {error}") \
                    from None
            if isinstance(error, h11.RemoteProtocolError):
                raise httpx.RemoteProtocolError(f"The server broke HTTP: {error}") from None
            raise
        return OutboundResponse(self.pool, connection, head, request)

    def _encode(self, request: OutboundRequest, protocol: h11.Connection) -> bytes:
        """Head and body as one write. Host, Content-Length and Connection come from the URL
        and the body, never from the caller (a Host of its own would reach another site
        behind the checked address)."""
        headers = [(b"Host", request.url.netloc)]
        content = request.content
        if content or request.method in _BODY_METHODS:
            headers.append((b"Content-Length", str(len(content or b"")).encode("ascii")))
        given = set()
        for name, value in request.headers:
            lower = name.lower()
            if lower not in _CLIENT_SET:
                headers.append((name, value))
                given.add(lower)
        if b"user-agent" not in given:
            headers.append((b"User-Agent", self.user_agent))
        if b"accept" not in given:
            headers.append((b"Accept", b"*/*"))
        data = protocol.send(h11.Request(method=request.method, target=request.url.raw_path,
                                         headers=headers))
        if content:
            data += protocol.send(h11.Data(data=content))
        return data + protocol.send(h11.EndOfMessage())

    async def _response_head(self, connection: _Connection) -> h11.Response:
        protocol, stream, timeout = connection.protocol, connection.stream, self.pool.read_s
        answered = False
        while True:
            event = protocol.next_event()
            if event is h11.NEED_DATA:
                data = await stream.read(READ_SIZE, timeout)
                if not data and not answered:
                    raise httpx.RemoteProtocolError(
                        "The server closed the connection without answering.")
                answered = True
                protocol.receive_data(data)
            elif type(event) is h11.Response:
                return event
            # an informational (1xx) response: the final one follows

    async def aclose(self) -> None:
        await self.pool.aclose()


def build_client(*, connect_timeout: float, idle_timeout: float) -> OutboundClient:
    """One pooled client for every outbound call."""
    ssl_context = httpx.create_ssl_context(trust_env=False)
    ssl_context.set_alpn_protocols(["http/1.1"])
    timeouts = Timeouts(connect=connect_timeout, read=idle_timeout)
    # as many kept alive as may be open: kernels call in bursts
    return OutboundClient(ConnectionPool(ssl_context, timeouts, max_connections=100))
