"""The outbound client's network stream (``egress/asyncio_stream.py``) on real sockets.

The client trusts its network stream for reads, writes, timeouts, TLS and for telling
whether a pooled connection was closed by the server; each of those is exercised here
against a server on loopback (TLS with a certificate made for the test).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from jupyter_secrets.egress.asyncio_stream import READ_LIMIT, connect
from jupyter_secrets.egress.http1 import build_client
from jupyter_secrets.egress.transport import address_policy

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def serving(handler: Handler, ssl_context: ssl.SSLContext | None = None,
                  ) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=ssl_context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def test_bytes_round_trip_and_a_closed_connection_reads_empty():
    async def answer_then_close(reader, writer):
        writer.write(b"pong:" + await reader.readexactly(4))
        await writer.drain()
        writer.close()

    async with serving(answer_then_close) as port:
        stream = await connect("127.0.0.1", port, timeout=5)
        await stream.write(b"ping", timeout=5)
        got = b""
        while len(got) < 9:
            got += await stream.read(65536, timeout=5)
        assert got == b"pong:ping"
        assert await stream.read(65536, timeout=5) == b""
        assert stream.is_readable is True, "a pooled idle connection the server closed " \
            "must read as expired"
        assert stream.get_extra_info("peername")[1] == port
        await stream.aclose()


async def test_an_idle_open_connection_is_not_readable_and_reads_time_out():
    async with serving(echo) as port:
        stream = await connect("127.0.0.1", port, timeout=5)
        assert stream.is_readable is False
        with pytest.raises(httpx.ReadTimeout):
            await stream.read(65536, timeout=0.05)
        await stream.write(b"still usable", timeout=5)
        assert await stream.read(65536, timeout=5) == b"still usable"
        await stream.aclose()
        with pytest.raises(httpx.WriteError):
            await stream.write(b"after close", timeout=5)


async def test_a_peer_that_stops_reading_times_the_write_out():
    """A write waits while the peer's buffers are full, then gives up at the write timeout."""
    started, release, done = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def never_read(reader, writer):
        started.set()
        await release.wait()
        writer.close()
        done.set()

    async with serving(never_read) as port:
        stream = await connect("127.0.0.1", port, timeout=5)
        await started.wait()
        with pytest.raises(httpx.WriteTimeout):
            await stream.write(b"x" * (64 * 1024 * 1024), timeout=0.2)
        release.set()
        await stream.aclose()
        await done.wait()


async def test_a_refused_connection_names_the_address():
    async with serving(echo) as port:
        pass  # closed again: nothing listens on the port now
    with pytest.raises(httpx.ConnectError, match=f"127.0.0.1:{port}"):
        await connect("127.0.0.1", port, timeout=5)


async def test_a_fast_sender_is_paused_while_the_reader_lags():
    """A slow caller must not make the server hold a fast upstream's whole answer."""
    payload = bytes(range(256)) * (4 * 1024 * 1024 // 256)  # 4 MiB

    async def flood(reader, writer):
        writer.write(payload)
        await writer.drain()
        writer.close()

    async with serving(flood) as port:
        stream = await connect("127.0.0.1", port, timeout=5)
        await asyncio.sleep(0.3)  # the sender fills every buffer it can
        buffered = len(stream._protocol.buffer)  # type: ignore[attr-defined]
        assert 0 < buffered <= 2 * READ_LIMIT
        got = bytearray()
        while chunk := await stream.read(65536, timeout=5):
            got += chunk
        assert bytes(got) == payload, "nothing lost or reordered across pauses"
        await stream.aclose()


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_tls_verifies_the_host_name_it_was_given(tmp_path):
    cert, key = _certificate(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(cert))
    async with serving(echo, server_context) as port:
        stream = await connect("127.0.0.1", port, timeout=5)
        secure = await stream.start_tls(client_context, server_hostname="localhost", timeout=5)
        assert secure.get_extra_info("ssl_object") is not None
        await secure.write(b"over tls", timeout=5)
        assert await secure.read(65536, timeout=5) == b"over tls"
        await secure.aclose()

        stream = await connect("127.0.0.1", port, timeout=5)
        with pytest.raises(httpx.ConnectError, match="TLS handshake failed"):
            await stream.start_tls(client_context, server_hostname="api.example.com",
                                   timeout=5)


async def test_https_through_the_outbound_client_verifies_the_certificate(tmp_path):
    """The whole path a proxied call takes (pool, DNS-pinning backend, this stream, TLS):
    an untrusted certificate is refused before any byte of the request leaves; a trusted
    one carries the exchange."""
    cert, key = _certificate(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    requests: list[bytes] = []

    async def answer(reader, writer):
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    client = build_client(connect_timeout=5, idle_timeout=5)
    async with serving(answer, server_context) as port:
        url = f"https://localhost:{port}/v1/models"
        with address_policy(["localhost"]):
            with pytest.raises(httpx.ConnectError, match="TLS handshake failed"):
                await client.send_one(client.build_one("GET", url, [], None))
            assert requests == []
            trusted = ssl.create_default_context(cafile=str(cert))
            client.pool.ssl_context = trusted
            response = await client.send_one(client.build_one("GET", url, [], None))
            assert response.status_code == 200 and await response.aread() == b"ok"
            await response.aclose()
    assert requests[0].startswith(b"GET /v1/models HTTP/1.1")
    await client.aclose()


