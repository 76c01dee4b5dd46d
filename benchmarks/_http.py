"""A small HTTP/1.1 client for the benchmarks: keep-alive, and a timestamp on every chunk.

httpx costs the client more CPU per call than a proxy under test spends, and it hides how a
response was framed. This client reads the status line and headers, then the body as the
server framed it (``Content-Length`` or chunked), noting when each HTTP chunk arrived, so a
benchmark can tell whether a proxy relayed every upstream chunk on its own and on time. It
speaks to loopback servers the benchmark started itself, nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

MAX_HEAD = 64 * 1024


class ProtocolError(Exception):
    """The server answered something this client cannot read."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    started: float  # perf_counter when the request was written
    head_at: float  # when the status line and headers had arrived
    chunks: list[tuple[float, bytes]] = field(default_factory=list)  # (arrived, data)
    chunked: bool = False
    complete: bool = False  # the body ended as framed (length reached, or the last chunk)

    @property
    def body(self) -> bytes:
        return b"".join(data for _, data in self.chunks)

    @property
    def first_byte_ms(self) -> float:
        """From writing the request to the first body byte (the head when the body is empty)."""
        at = self.chunks[0][0] if self.chunks else self.head_at
        return (at - self.started) * 1000

    @property
    def total_ms(self) -> float:
        at = self.chunks[-1][0] if self.chunks else self.head_at
        return (at - self.started) * 1000


class Connection:
    """One keep-alive connection; reconnects when the server closed the previous one."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None

    async def request(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
    ) -> Response:
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(
                self.host, self.port, limit=MAX_HEAD
            )
        reader, writer = self._reader, self._writer
        assert reader is not None and writer is not None
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers or ()]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        started = time.perf_counter()
        writer.write(head + (body or b""))
        try:
            response = await self._read(reader, started, head_only=method == "HEAD")
        except BaseException:
            await self.close()
            raise
        if response.headers.get("connection", "").lower() == "close" or not response.complete:
            await self.close()
        return response

    @staticmethod
    async def _read(reader: asyncio.StreamReader, started: float, *, head_only: bool) -> Response:
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as error:
            raise ProtocolError("the server closed the connection before answering") from error
        head_at = time.perf_counter()
        status_line, *header_lines = raw.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ProtocolError(f"not an HTTP/1.x status line: {status_line!r}")
        headers: dict[str, str] = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                key = name.strip().lower()
                headers[key] = f"{headers[key]}, {value.strip()}" if key in headers \
                    else value.strip()
        response = Response(int(parts[1]), headers, started, head_at)
        if head_only or response.status in (204, 304):
            response.complete = True
            return response
        if "chunked" in headers.get("transfer-encoding", "").lower():
            response.chunked = True
            await _read_chunked(reader, response)
        elif "content-length" in headers:
            await _read_length(reader, response, int(headers["content-length"]))
        else:  # until the server closes
            while data := await reader.read(65536):
                response.chunks.append((time.perf_counter(), data))
            response.complete = True
            response.headers["connection"] = "close"
        return response


async def _read_length(reader: asyncio.StreamReader, response: Response, length: int) -> None:
    left = length
    while left > 0:
        data = await reader.read(min(left, 65536))
        if not data:
            return
        response.chunks.append((time.perf_counter(), data))
        left -= len(data)
    response.complete = True


async def _read_chunked(reader: asyncio.StreamReader, response: Response) -> None:
    while True:
        try:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                response.complete = True
                return
            data = await reader.readexactly(size)
            arrived = time.perf_counter()
            if await reader.readexactly(2) != b"\r\n":
                raise ProtocolError("a chunk did not end with CRLF")
        except (asyncio.IncompleteReadError, ConnectionError):
            return  # cut mid-body: complete stays False
        response.chunks.append((arrived, data))
