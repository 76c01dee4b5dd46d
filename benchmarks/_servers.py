"""The benchmark's own servers, each run as its own process: an upstream and a plain relay.

    python benchmarks/_servers.py upstream --port P --key sk-...
    python benchmarks/_servers.py relay --port P --upstream http://127.0.0.1:U --key sk-...

``upstream`` is an OpenAI-style ``POST /v1/chat/completions`` on a bare asyncio protocol (a
tornado app would cost more CPU per call than some of the proxies it is meant to measure).
It checks ``Authorization: Bearer <key>`` and answers a chat completion, or with
``"stream": true`` an SSE stream whose events leave at fixed times (event ``k`` at
``k * gap_ms`` after the first, so timer jitter does not add up). The request's ``bench``
object tunes it: ``delay_ms`` before a completion, ``events`` and ``gap_ms`` of a stream, and
``hold``: send one event, then wait for ``POST /release`` (memory per open stream).
``GET /stats`` says how many streams are held.

``relay`` is the floor for a Python proxy: tornado in, one pooled ``httpx.AsyncClient`` out
(its default pool limits), the key put in ``Authorization``, Nagle off, every chunk written
and flushed as it arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from typing import Any

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "content-length",
}

COMPLETION = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000,
    "model": "bench", "system_fingerprint": "fp_bench",
    "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                 "message": {"role": "assistant", "content": "Hello from the bench upstream."}}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16},
}).encode()


def _event(i: int) -> bytes:
    chunk = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
             "model": "bench", "choices": [{"index": 0, "delta": {"content": f" tok{i}"},
                                            "finish_reason": None}]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _response(status: int, body: bytes, content_type: str = "application/json") -> bytes:
    reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 400: "Bad Request"}[status]
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


SSE_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
            b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n")


class _State:
    def __init__(self, key: str) -> None:
        self.auth = f"Bearer {key}"
        self.release = asyncio.Event()
        self.held = 0


class UpstreamProtocol(asyncio.Protocol):
    def __init__(self, state: _State) -> None:
        self.state = state
        self.buffer = bytearray()
        self.busy = False
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._next()

    def _next(self) -> None:
        while not self.busy and self.transport is not None and not self.transport.is_closing():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", ""):
                self.transport.write(_response(400, b'{"error": "send Content-Length"}'))
                self.transport.close()
                return
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            self._handle(method, target.split("?", 1)[0], headers, body)

    def _done(self) -> None:
        self.busy = False
        self._next()

    def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        assert self.transport is not None
        if path == "/v1/chat/completions" and method == "POST":
            if headers.get("authorization") != self.state.auth:
                self.transport.write(_response(401, b'{"error": {"message": "bad key"}}'))
                return
            request = json.loads(body or b"{}")
            bench: dict[str, Any] = request.get("bench") or {}
            if request.get("stream"):
                self.busy = True
                self.task = asyncio.ensure_future(self._stream(bench))
            elif bench.get("delay_ms"):
                self.busy = True
                asyncio.get_running_loop().call_later(bench["delay_ms"] / 1000, self._answer)
            else:
                self.transport.write(_response(200, COMPLETION))
        elif path == "/release" and method == "POST":
            self.state.release.set()
            self.state.release = asyncio.Event()
            self.transport.write(_response(200, b"{}"))
        elif path == "/stats":
            self.transport.write(_response(200, json.dumps({"held": self.state.held}).encode()))
        else:
            self.transport.write(_response(404, b'{"error": "no such path"}'))

    def _answer(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_response(200, COMPLETION))
        self._done()

    async def _stream(self, bench: dict[str, Any]) -> None:
        transport = self.transport
        assert transport is not None
        events, gap = int(bench.get("events", 20)), float(bench.get("gap_ms", 10)) / 1000
        loop = asyncio.get_running_loop()
        try:
            transport.write(SSE_HEAD + _chunk(_event(0)))
            if bench.get("hold"):
                self.state.held += 1
                release = self.state.release
                try:
                    await asyncio.wait_for(release.wait(), 120)
                finally:
                    self.state.held -= 1
            else:
                t0 = loop.time()
                for i in range(1, events):
                    await asyncio.sleep(max(0.0, t0 + i * gap - loop.time()))
                    if transport.is_closing():
                        return
                    transport.write(_chunk(_event(i)))
                await asyncio.sleep(max(0.0, t0 + events * gap - loop.time()))
            if not transport.is_closing():
                transport.write(_chunk(DONE) + b"0\r\n\r\n")
        finally:
            self._done()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve_upstream(port: int, key: str) -> None:
    state = _State(key)
    loop = asyncio.get_running_loop()
    servers = [await loop.create_server(lambda: UpstreamProtocol(state), "127.0.0.1", port,
                                        reuse_address=True)]
    # jupyter-server-proxy's /proxy/<port> goes to "localhost", which may resolve to ::1 first.
    with contextlib.suppress(OSError):
        servers.append(await loop.create_server(lambda: UpstreamProtocol(state), "::1", port,
                                                reuse_address=True))
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def relay_client() -> Any:
    """The relay's one pooled client (httpx's default pool limits)."""
    import httpx

    return httpx.AsyncClient(
        timeout=httpx.Timeout(10.0, read=300.0), trust_env=False,
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
    )


async def relay(handler: Any, client: Any, upstream: str, key: str, path: str, *,
                nagle: bool = False) -> None:
    """Relay ``handler``'s request to ``upstream``/``path`` with the key, chunk by chunk."""
    # tornado leaves Nagle on until finish(): a streamed chunk would wait for the client's
    # delayed ACK of the one before it.
    request = handler.request
    if not nagle:
        request.connection.stream.set_nodelay(True)
    headers = [(k, v) for k, v in request.headers.get_all()
               if k.lower() not in HOP_BY_HOP and k.lower() != "authorization"]
    headers.append(("Authorization", f"Bearer {key}"))
    url = f"{upstream}/{path}" + (f"?{request.query}" if request.query else "")
    outbound = client.build_request(request.method or "GET", url, headers=headers,
                                    content=request.body or None)
    response = await client.send(outbound, stream=True)
    try:
        handler.set_status(response.status_code, response.reason_phrase)
        handler.clear_header("Content-Type")
        for name, value in response.headers.multi_items():
            if name.lower() not in HOP_BY_HOP:
                handler.add_header(name, value)
        async for chunk in response.aiter_raw():
            handler.write(chunk)
            await handler.flush()
    finally:
        await response.aclose()


def make_relay(upstream: str, key: str, *, nagle: bool = False) -> Any:
    from tornado import web

    client = relay_client()

    class RelayHandler(web.RequestHandler):
        async def _relay(self, path: str) -> None:
            await relay(self, client, upstream, key, path, nagle=nagle)

        get = post = put = patch = delete = _relay

    return web.Application([(r"/(.*)", RelayHandler)])


async def serve_relay(port: int, upstream: str, key: str, nagle: bool) -> None:
    app = make_relay(upstream, key, nagle=nagle)
    app.listen(port, address="127.0.0.1")
    print("ready", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=["upstream", "relay"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--upstream")
    parser.add_argument("--nagle", action="store_true",
                        help="relay: leave Nagle on (tornado's default) to compare")
    args = parser.parse_args()
    try:
        if args.role == "upstream":
            asyncio.run(serve_upstream(args.port, args.key))
        else:
            asyncio.run(serve_relay(args.port, args.upstream, args.key, args.nagle))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
