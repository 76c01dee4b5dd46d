"""The outbound HTTP/1.1 client (``egress/http1.py``) against raw servers on loopback.

Every proxied call goes through this client, so each promise it makes is checked on real
sockets: connections kept alive and given back only when a response was read whole, the
headers only the client may set, bodies decoded in bounded steps, and every way a server
can fail (silence, early close, broken HTTP) ending in httpx's exception for it with the
connection released.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest

from jupyter_secrets.egress.http1 import (
    DECODED_STEP,
    ConnectionPool,
    OutboundClient,
    Timeouts,
    build_client,
)
from jupyter_secrets.egress.transport import address_policy
from jupyter_secrets.errors import EgressRefused

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    def __init__(self) -> None:
        self.connections = 0
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []


async def read_request(reader: asyncio.StreamReader, server: Server) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    server.heads.append(head)
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    server.bodies.append(body)
    return head


def answering(*responses: bytes, close: bool = False) -> Callable[[Server], Handler]:
    """A server that answers each request on a connection with the next response."""
    def make(server: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            server.connections += 1
            for response in responses:
                if await read_request(reader, server) is None:
                    break
                writer.write(response)
                await writer.drain()
                if close:
                    break
            else:
                await reader.read()  # keep the connection until the client closes it
            writer.close()
        return handle
    return make


Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, Server], Awaitable[None]]


def scripted(script: Script) -> Callable[[Server], Handler]:
    """A server whose every connection runs ``script`` (one test's misbehaviour), then closes."""
    def make(server: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await script(reader, writer, server)
            writer.close()
        return handle
    return make


@asynccontextmanager
async def serving(
    make: Callable[[Server], Handler], host: str = "127.0.0.1"
) -> AsyncIterator[tuple[Server, str]]:
    state = Server()
    handler = make(state)
    writers: list[asyncio.StreamWriter] = []

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await handler(reader, writer)

    server = await asyncio.start_server(tracked, host, 0)
    try:
        yield state, f"http://{host}:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await asyncio.sleep(0.01)  # let the closes reach the sockets


def client(*, read: float = 5.0, connect: float = 5.0, max_connections: int = 100,
           keepalive_s: float = 5.0) -> OutboundClient:
    base = build_client(connect_timeout=connect, idle_timeout=read)
    return OutboundClient(ConnectionPool(base.pool.ssl_context, Timeouts(connect, read),
                                         max_connections=max_connections,
                                         keepalive_s=keepalive_s))


async def call(c: OutboundClient, method: str, url: str,
               headers: list[tuple[bytes, bytes]] | None = None,
               content: bytes | None = None, *,
               allowed: tuple[str, ...] = ("127.0.0.1",)) -> tuple[int, bytes]:
    """One exchange under the address policy of a secret whose allowed hosts are ``allowed``."""
    with address_policy(allowed):
        response = await c.send_one(c.build_one(method, url, headers or [], content))
    try:
        return response.status_code, await response.aread()
    finally:
        await response.aclose()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def test_a_connection_read_whole_is_kept_alive_and_reused():
    async with serving(answering(OK, OK, OK)) as (server, url):
        c = client()
        for _ in range(3):
            assert await call(c, "GET", f"{url}/a") == (200, b"ok")
        assert server.connections == 1
        assert c.pool.open_connections == 1
        await c.aclose()
        assert c.pool.open_connections == 0


async def test_a_response_closed_before_its_end_takes_its_connection_with_it():
    """The unread rest would otherwise be read as the next call's answer."""
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"
    async with serving(answering(big, OK)) as (server, url):
        c = client()
        with address_policy(["127.0.0.1"]):
            response = await c.send_one(c.build_one("GET", url, [], None))
        await response.aclose()  # nothing read
        assert c.pool.open_connections == 0
        assert await call(c, "GET", url) == (200, b"0123456789")
        assert server.connections == 2
        await c.aclose()


async def test_connection_close_from_the_server_is_honoured():
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    async with serving(answering(closing, OK)) as (server, url):
        c = client()
        assert await call(c, "GET", url) == (200, b"ok")
        assert await call(c, "GET", url) == (200, b"ok")
        assert server.connections == 2
        await c.aclose()


async def test_an_idle_connection_the_server_closed_is_replaced_unnoticed():
    async with serving(answering(OK, close=True)) as (server, url):
        c = client()
        assert await call(c, "GET", url) == (200, b"ok")
        await asyncio.sleep(0.1)  # the server has closed its side meanwhile
        assert await call(c, "GET", url) == (200, b"ok")
        assert server.connections == 2
        await c.aclose()


async def test_an_idle_connection_past_its_keep_alive_is_not_reused():
    async with serving(answering(OK, OK)) as (server, url):
        c = client(keepalive_s=0.05)
        assert await call(c, "GET", url) == (200, b"ok")
        await asyncio.sleep(0.1)
        assert await call(c, "GET", url) == (200, b"ok")
        assert server.connections == 2
        assert c.pool.open_connections == 1
        await c.aclose()


async def test_host_length_and_framing_come_from_the_client_never_the_caller():
    """A Host of the caller's own would reach another site behind the checked address."""
    async with serving(answering(OK)) as (server, url):
        c = client()
        status, _ = await call(c, "POST", f"{url}/v1/x?q=1", [
            (b"Host", b"internal.example"), (b"Content-Length", b"999"),
            (b"Transfer-Encoding", b"chunked"), (b"Connection", b"upgrade"),
            (b"X-Kept", b"yes")], b"{}")
        assert status == 200
        head = server.heads[0].decode().lower()
        assert head.startswith("post /v1/x?q=1 http/1.1\r\n")
        assert f"host: {url.removeprefix('http://')}\r\n" in head
        assert "internal.example" not in head and "chunked" not in head
        assert "content-length: 2\r\n" in head and "x-kept: yes" in head
        assert "user-agent: jupyter-secrets/" in head and "upgrade" not in head
        assert server.bodies == [b"{}"]
        await c.aclose()


async def test_an_empty_post_says_so_and_a_url_is_encoded_as_httpx_would():
    async with serving(answering(OK)) as (server, url):
        c = client()
        assert (await call(c, "POST", f"{url}/a path/ü"))[0] == 200
        head = server.heads[0].decode()
        assert head.startswith("POST /a%20path/%C3%BC HTTP/1.1")
        assert "Content-Length: 0\r\n" in head
        await c.aclose()


async def test_a_header_that_would_split_the_request_is_refused_before_sending():
    async with serving(answering(OK)) as (server, url):
        c = client()
        with pytest.raises(httpx.LocalProtocolError, match="not valid HTTP"):
            await call(c, "GET", url, [(b"X-A", b"1\r\nX-Injected: 1")])
        assert server.heads == []
        assert c.pool.open_connections == 0
        await c.aclose()


@pytest.mark.parametrize("coding,encode", [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),  # zlib-wrapped, as the RFC says
    ("deflate", lambda data: zlib.compress(data, wbits=-zlib.MAX_WBITS)),  # raw, as IIS
])
async def test_gzip_and_deflate_bodies_are_decoded(coding, encode):
    body = encode(b"hello " * 1000)
    answer = (f"HTTP/1.1 200 OK\r\nContent-Encoding: {coding}\r\n"
              f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    async with serving(answering(answer)) as (_, url):
        c = client()
        assert await call(c, "GET", url) == (200, b"hello " * 1000)
        await c.aclose()


async def test_a_compressed_body_expands_in_bounded_steps():
    """A few KiB of gzip can hold gigabytes: no single chunk may hold more than a step."""
    bomb = gzip.compress(b"\0" * (8 * DECODED_STEP))
    answer = (f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
              f"Content-Length: {len(bomb)}\r\n\r\n").encode() + bomb
    async with serving(answering(answer)) as (_, url):
        c = client()
        with address_policy(["127.0.0.1"]):
            response = await c.send_one(c.build_one("GET", url, [], None))
        sizes = [len(chunk) async for chunk in response.aiter_bytes()]
        await response.aclose()
        assert sum(sizes) == 8 * DECODED_STEP and max(sizes) <= DECODED_STEP
        assert response.num_bytes_downloaded == len(bomb)
        await c.aclose()


async def test_a_body_that_is_not_what_it_claims_fails_to_decode():
    answer = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nplain"
    async with serving(answering(answer)) as (_, url):
        c = client()
        with pytest.raises(httpx.DecodingError, match="not valid gzip"):
            await call(c, "GET", url)
        assert c.pool.open_connections == 0
        await c.aclose()


async def test_chunks_arrive_as_the_server_sends_them():
    second_sent = asyncio.Event()
    first_read = asyncio.Event()

    async def script(reader, writer, server):
        await read_request(reader, server)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await first_read.wait()
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
        second_sent.set()
        await writer.drain()
        await reader.read()

    async with serving(scripted(script)) as (_, url):
        c = client()
        with address_policy(["127.0.0.1"]):
            response = await c.send_one(c.build_one("GET", url, [], None))
        chunks = response.aiter_bytes()
        assert await anext(chunks) == b"first" and not second_sent.is_set()
        first_read.set()
        assert [chunk async for chunk in chunks] == [b"second"]
        await response.aclose()
        assert c.pool.open_connections == 1, "a chunked body read whole keeps its connection"
        await c.aclose()


async def test_an_informational_answer_is_skipped_and_head_has_no_body():
    continue_then_ok = b"HTTP/1.1 100 Continue\r\n\r\n" + OK
    head_answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    async with serving(answering(continue_then_ok, head_answer, OK)) as (server, url):
        c = client()
        assert await call(c, "POST", url, content=b"x") == (200, b"ok")
        assert await call(c, "HEAD", url) == (200, b"")
        assert await call(c, "GET", url) == (200, b"ok")
        assert server.connections == 1
        await c.aclose()


@pytest.mark.parametrize("answer,error,message", [
    (b"", httpx.RemoteProtocolError, "without answering"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", httpx.RemoteProtocolError,
     "broke HTTP"),
    (b"SMTP ready\r\n\r\n", httpx.RemoteProtocolError, "broke HTTP"),
])
async def test_a_broken_answer_is_an_error_and_frees_the_connection(answer, error, message):
    async with serving(answering(answer, close=True)) as (_, url):
        c = client()
        with pytest.raises(error, match=message):
            await call(c, "GET", url)
        assert c.pool.open_connections == 0
        await c.aclose()


async def test_a_silent_server_times_out_and_frees_the_connection():
    async def script(reader, writer, server):
        await read_request(reader, server)
        await reader.read()

    async with serving(scripted(script)) as (_, url):
        c = client(read=0.1)
        with pytest.raises(httpx.ReadTimeout):
            await call(c, "GET", url)
        assert c.pool.open_connections == 0
        await c.aclose()


async def test_a_full_pool_makes_a_call_wait_then_gives_up_at_the_connect_timeout():
    release = asyncio.Event()

    async def script(reader, writer, server):
        while await read_request(reader, server) is not None:
            await release.wait()
            writer.write(OK)
            await writer.drain()

    async with serving(scripted(script)) as (_, url):
        c = client(max_connections=1, connect=0.2)
        first = asyncio.ensure_future(call(c, "GET", url))
        await asyncio.sleep(0.05)
        with pytest.raises(httpx.PoolTimeout, match="1 outbound connections stayed busy"):
            await call(c, "GET", url)
        second = asyncio.ensure_future(call(c, "GET", url))
        await asyncio.sleep(0.05)
        release.set()
        assert await first == (200, b"ok") and await second == (200, b"ok")
        assert c.pool.open_connections == 1
        await c.aclose()


async def test_a_full_pool_closes_an_idle_connection_of_another_origin_to_make_room():
    async with serving(answering(OK)) as (one, first_url), \
            serving(answering(OK)) as (other, second_url):
        c = client(max_connections=1)
        assert await call(c, "GET", first_url) == (200, b"ok")
        assert await call(c, "GET", second_url) == (200, b"ok")
        assert (one.connections, other.connections) == (1, 1)
        assert c.pool.open_connections == 1
        await c.aclose()


async def test_a_caller_that_goes_away_mid_body_takes_the_connection_with_it():
    async def script(reader, writer, server):
        await read_request(reader, server)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()
        await reader.read()

    async with serving(scripted(script)) as (_, url):
        c = client()

        async def read_all() -> None:
            with address_policy(["127.0.0.1"]):
                response = await c.send_one(c.build_one("GET", url, [], None))
            try:
                await response.aread()
            finally:
                await response.aclose()

        task = asyncio.ensure_future(read_all())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert c.pool.open_connections == 0
        await c.aclose()


LINK_LOCAL = "169.254.77.1"  # added to the loopback interface for the test below


@pytest.fixture
def link_local_address() -> Iterator[str]:
    """A real link-local address on this machine (root, as CI runs): the policy that guards
    metadata addresses is checked on live sockets, not on a simulated resolver."""
    if os.geteuid() != 0:
        raise RuntimeError("This test adds a link-local address to the loopback interface: "
                           "run it as root (as CI does).")
    subprocess.run(["ip", "addr", "add", f"{LINK_LOCAL}/32", "dev", "lo"], check=True,
                   capture_output=True)
    try:
        yield LINK_LOCAL
    finally:
        subprocess.run(["ip", "addr", "del", f"{LINK_LOCAL}/32", "dev", "lo"],
                       capture_output=True)


async def test_a_kept_alive_connection_serves_only_calls_whose_policy_admits_its_address(
    link_local_address: str,
):
    """A link-local (metadata-class) upstream is reachable only for a secret that lists it
    exactly. The connection one such call left open must not carry the next call, made
    under another secret's policy, to the same address."""
    async with serving(answering(OK, OK, OK), link_local_address) as (state, url):
        c = client()
        # the secret that lists it exactly
        assert await call(c, "GET", url, allowed=(link_local_address,)) == (200, b"ok")
        assert c.pool.open_connections == 1  # kept alive
        with pytest.raises(EgressRefused, match="link-local"):  # another secret's wildcard
            await call(c, "GET", url, allowed=("*.example.com",))
        assert len(state.heads) == 1  # nothing reached the address for the second call
        # its own kind may still reuse it
        assert await call(c, "GET", url, allowed=(link_local_address,)) == (200, b"ok")
        assert state.connections == 1
        await c.aclose()
