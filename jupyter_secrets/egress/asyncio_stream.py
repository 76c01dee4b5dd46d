"""A TCP (or TLS) stream on a bare asyncio protocol: the socket under every outbound call.

The outbound client (``http1.py``) reads and writes through it. AnyIO's streams (what
httpcore uses) wrap each read and write in cancel scopes and task-state lookups, which on
loopback cost more CPU than the socket work itself (benchmarks/README.md). The proxy runs on
asyncio only, so this stream talks to an ``asyncio.Protocol`` directly: a read returns what
``data_received`` buffered or waits on one future, timeouts are one timer, and whether an
idle pooled connection was closed by the server is known without a ``select`` call. Errors
are httpx's transport exceptions, which the egress layer already turns into answers for the
caller.

Reading is flow-controlled: past ``READ_LIMIT`` buffered bytes the transport stops reading
until the caller catches up, so a slow client never makes the server hold a fast upstream's
whole answer in memory.
"""

from __future__ import annotations

import asyncio
import ssl
import typing

import httpx

READ_LIMIT = 256 * 1024  # bytes buffered before the socket is paused
CLOSE_WAIT_S = 1.0  # a TLS peer that never answers close_notify does not hold aclose()


class _Protocol(asyncio.Protocol):
    """Buffers what arrives and wakes the one reader or writer waiting on it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.reading_paused = False
        self.writing_paused = False
        self.waiters: dict[str, asyncio.Future[None]] = {}  # "read", "write": one each
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > READ_LIMIT and not self.reading_paused and self.transport:
            self.reading_paused = True
            self.transport.pause_reading()
        self.wake("read")

    def eof_received(self) -> bool:
        self.eof = True
        self.wake("read")
        return False  # close our side too: HTTP/1.1 has nothing to send after it

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        if not self.closed.done():
            self.closed.set_result(None)
        self.wake("read")
        self.wake("write")

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self.wake("write")

    def wake(self, kind: str) -> None:
        waiter = self.waiters.get(kind)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, kind: str, timeout: float | None, error: Exception) -> None:
        """Wait until :meth:`wake` (``kind``), or raise ``error`` after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        waiter = self.waiters[kind] = loop.create_future()
        timer = loop.call_later(timeout, _expire, waiter, error) if timeout is not None else None
        try:
            await waiter
        finally:
            del self.waiters[kind]
            if timer is not None:
                timer.cancel()

    def take(self, max_bytes: int) -> bytes:
        data = bytes(self.buffer[:max_bytes])
        del self.buffer[:max_bytes]
        if self.reading_paused and len(self.buffer) <= READ_LIMIT // 2 and self.transport:
            self.reading_paused = False
            self.transport.resume_reading()
        return data


def _expire(waiter: asyncio.Future[None], error: Exception) -> None:
    if not waiter.done():
        waiter.set_exception(error)


class AsyncioStream:
    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.buffer and not protocol.eof:
            await protocol.wait("read", timeout,
                                httpx.ReadTimeout("No data arrived within the read timeout."))
        if protocol.buffer:
            return protocol.take(max_bytes)
        if protocol.error is not None:
            raise httpx.ReadError(f"The connection broke: {protocol.error}")
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        if self._transport.is_closing() or protocol.error is not None:
            raise httpx.WriteError("The connection is closed.")
        self._transport.write(buffer)
        if protocol.writing_paused:
            await protocol.wait("write", timeout,
                                httpx.WriteTimeout("The peer stopped reading (write timeout)."))
            if protocol.error is not None or self._transport.is_closing():
                raise httpx.WriteError("The connection closed while writing.")

    async def aclose(self) -> None:
        """Close, and wait (up to a second, then abort) until the socket is released."""
        self._transport.close()
        closed = self._protocol.closed
        if not closed.done():
            await asyncio.wait((closed,), timeout=CLOSE_WAIT_S)
            if not closed.done():
                self._transport.abort()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> AsyncioStream:
        loop = asyncio.get_running_loop()
        try:
            transport = await loop.start_tls(
                self._transport, self._protocol, ssl_context, server_hostname=server_hostname,
                ssl_handshake_timeout=timeout,
            )
        except (TimeoutError, asyncio.TimeoutError):
            await self.aclose()
            raise httpx.ConnectTimeout("The TLS handshake timed out.") from None
        except (OSError, ssl.SSLError) as error:
            await self.aclose()
            raise httpx.ConnectError(f"The TLS handshake failed: {error}") from None
        if transport is None:  # the connection closed during the handshake
            raise httpx.ConnectError("The connection closed during the TLS handshake.")
        self._protocol.transport = transport
        return AsyncioStream(transport, self._protocol)

    @property
    def is_readable(self) -> bool:
        """An idle connection with news (data or EOF): the server closed it, or broke HTTP."""
        return bool(self._protocol.buffer) or self._protocol.eof

    def close(self) -> None:
        """Close without waiting (a discarded idle connection); aborted if not gone soon."""
        self._transport.close()
        closed = self._protocol.closed
        if not closed.done():
            asyncio.get_running_loop().call_later(CLOSE_WAIT_S, _abort_unless_closed,
                                                  self._transport, closed)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._transport.get_extra_info(info)


def _abort_unless_closed(transport: asyncio.Transport, closed: asyncio.Future[None]) -> None:
    if not closed.done():
        transport.abort()


async def connect(host: str, port: int, *, timeout: float | None) -> AsyncioStream:
    """A TCP connection to an address (already checked: see ``transport.connect_pinned``);
    Nagle is off (asyncio's default for TCP)."""
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await asyncio.wait_for(
            loop.create_connection(_Protocol, host, port), timeout)
    except (TimeoutError, asyncio.TimeoutError):
        raise httpx.ConnectTimeout(f"Connecting to {host}:{port} timed out.") from None
    except OSError as error:
        raise httpx.ConnectError(
            f"Could not connect to {host}:{port}: {error.strerror or error}") from None
    return AsyncioStream(transport, protocol)
