"""A real loopback HTTP upstream for tests: OpenAI/Anthropic look-alikes, echo, failures.

Tests exercise the egress proxy against an actual HTTP server rather than mocks, so header
handling, chunked streaming, redirects and broken connections behave as on the wire. The
server runs on 127.0.0.1 in a background thread with its own event loop, so it works from
synchronous tests, from async tests, and behind a Jupyter server running in the test's loop.

    with start_upstream(api_key="sk-test") as upstream:
        httpx.get(f"{upstream.url}/echo/x")
        assert upstream.requests[-1].path == "/echo/x"

Endpoints:

* ``POST /v1/chat/completions``: OpenAI-compatible (``Authorization: Bearer <api_key>``),
  JSON or, with ``"stream": true``, Server-Sent Events flushed one chunk at a time.
* ``GET /v1/models``: OpenAI's model list (what a connection's Test button calls).
* ``POST /v1/messages``: Anthropic-compatible (``anthropic-version`` and the key in
  ``x-api-key``, or as ``Authorization: Bearer``, which is what the anthropic 2.x SDK
  sends), JSON or SSE with Anthropic's event types.
* ``POST /openai/v1/chat/completions`` (Groq, Bedrock), ``POST /openai/deployments/{d}/chat/
  completions?api-version=...`` (Azure OpenAI: the key in ``api-key``), ``POST /v1[beta]/
  models/{m}:generateContent`` and ``:streamGenerateContent?alt=sse`` (Gemini: ``x-goog-api-key``),
  ``POST /v2/chat`` (Cohere, JSON or SSE), ``GET /user`` (GitHub's REST API).
* ``ANY /echo/...``: the request as JSON (method, path, query, headers, body), for scrubbing.
* ``GET /echo-header?name=X``: request header ``X`` copied into response header ``X-Echo``.
* ``GET /redirect?to=URL&code=302[&placeholder=NAME]`` (the Location then asks for
  ``{{secrets.NAME}}`` in its query), ``GET /slow?delay=S``, ``GET /status/{code}``.
* ``GET /stream-then-fail``: a few chunks, then the connection is dropped mid-body.
* ``GET /encoded?coding=gzip&layers=1``: the request echoed as JSON, compressed ``layers``
  times with zlib framing for ``coding`` (``gzip``, ``x-gzip``, ``deflate``, or any other
  label, which gets gzip bytes), declared once in ``Content-Encoding``; it ignores what the
  client accepts, as a careless server would.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPHeaders
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from jupyter_secrets.boundary.scrub import IDLE_FLUSH_S

__all__ = [
    "CONTENT",
    "CONTENT_PIECES",
    "DEFAULT_API_KEY",
    "RecordedRequest",
    "Upstream",
    "iter_upstream",
    "make_app",
    "start_upstream",
]

DEFAULT_API_KEY = "sk-upstream-test-key-0123456789"
# What every chat endpoint answers; the streamed pieces concatenate to the same text.
CONTENT_PIECES = ("Hello", " from", " upstream")
CONTENT = "".join(CONTENT_PIECES)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the upstream received it (headers keep every repeated value)."""

    method: str
    path: str
    query: str
    headers: HTTPHeaders
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Settings:
    api_key: str
    stream_delay: float
    requests: list[RecordedRequest] = field(default_factory=list)
    hung_up: list[str] = field(default_factory=list)


class _Base(RequestHandler):
    """Records every request before it is handled, and answers errors as JSON."""

    def initialize(self, settings: _Settings) -> None:
        self.upstream = settings

    def prepare(self) -> None:
        self.upstream.requests.append(
            RecordedRequest(
                method=self.request.method or "",
                path=self.request.path,
                query=self.request.query,
                headers=HTTPHeaders(self.request.headers),
                body=self.request.body,
            )
        )

    def check_xsrf_cookie(self) -> None:
        """An API server, not a browser app: no XSRF cookies."""

    def send_json(self, status: int, payload: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))

    def json_body(self) -> dict[str, Any] | None:
        try:
            body = json.loads(self.request.body or b"null")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def start_sse(self) -> None:
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")

    async def send_event(self, data: str, event: str | None = None) -> None:
        """Write one SSE event and flush it, so a client sees it as its own chunk."""
        prefix = f"event: {event}\n" if event else ""
        self.write(f"{prefix}data: {data}\n\n")
        await self.flush()


class OpenAIChatHandler(_Base):
    def key_ok(self) -> bool:
        return self.request.headers.get("Authorization") == f"Bearer {self.upstream.api_key}"

    async def post(self, *_args: str) -> None:
        if not self.key_ok():
            self.send_json(
                401,
                {
                    "error": {
                        "message": "Incorrect API key provided.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
            )
            return
        body = self.json_body()
        if body is None:
            self.send_json(
                400,
                {
                    "error": {
                        "message": "Body must be a JSON object.",
                        "type": "invalid_request_error",
                    }
                },
            )
            return
        model = str(body.get("model", "gpt-test"))
        base = {"id": "chatcmpl-upstream", "created": int(time.time()), "model": model}
        if not body.get("stream"):
            self.send_json(
                200,
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": CONTENT, "refusal": None},
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
                },
            )
            return
        deltas: list[tuple[dict[str, str], str | None]] = [
            ({"role": "assistant", "content": ""}, None)
        ]
        deltas += [({"content": piece}, None) for piece in CONTENT_PIECES]
        deltas.append(({}, "stop"))
        self.start_sse()
        for index, (delta, finish_reason) in enumerate(deltas):
            if index:
                await asyncio.sleep(self.upstream.stream_delay)
            chunk = {
                **base,
                "object": "chat.completion.chunk",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
            await self.send_event(json.dumps(chunk))
        await self.send_event("[DONE]")


class AnthropicMessagesHandler(_Base):
    def _error(self, status: int, kind: str, message: str) -> None:
        self.send_json(status, {"type": "error", "error": {"type": kind, "message": message}})

    async def post(self) -> None:
        # The API takes ``x-api-key``; anthropic 2.x sends ``api_key`` as a Bearer token.
        headers = self.request.headers
        if not (
            headers.get("x-api-key") == self.upstream.api_key
            or headers.get("Authorization") == f"Bearer {self.upstream.api_key}"
        ):
            self._error(401, "authentication_error", "invalid x-api-key")
            return
        if not self.request.headers.get("anthropic-version"):
            self._error(400, "invalid_request_error", "anthropic-version header is required")
            return
        body = self.json_body()
        if body is None:
            self._error(400, "invalid_request_error", "Body must be a JSON object.")
            return
        model = str(body.get("model", "claude-test"))
        message = {
            "id": "msg_upstream",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": CONTENT}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 3},
        }
        if not body.get("stream"):
            self.send_json(200, message)
            return
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 5, "output_tokens": 1},
        }
        events: list[dict[str, Any]] = [
            {"type": "message_start", "message": start},
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            *(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                }
                for piece in CONTENT_PIECES
            ),
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 3},
            },
            {"type": "message_stop"},
        ]
        self.start_sse()
        for index, event in enumerate(events):
            if index:
                await asyncio.sleep(self.upstream.stream_delay)
            await self.send_event(json.dumps(event), event=event["type"])


class EchoHandler(_Base):
    """Reflects the whole request, the way httpbin does: the scrubber's worst case."""

    def _echo(self, *_args: str) -> None:
        headers = {
            name: ", ".join(self.request.headers.get_list(name)) for name in self.request.headers
        }
        self.send_json(
            200,
            {
                "method": self.request.method,
                "path": self.request.path,
                "query": self.request.query,
                "headers": headers,
                "body": self.request.body.decode("utf-8", "replace"),
            },
        )

    get = post = put = patch = delete = options = _echo

    def head(self, *_args: str) -> None:
        self.set_header("Content-Type", "application/json")


class EchoHeaderHandler(_Base):
    def get(self) -> None:
        name = self.get_query_argument("name")
        self.set_header("X-Echo", self.request.headers.get(name, ""))
        self.send_json(200, {"echoed": name})


class SetCookieHandler(_Base):
    """Sets the cookie the query names: a session one caller's call must not hand another."""

    def get(self) -> None:
        self.set_header("Set-Cookie", f"session={self.get_query_argument('value')}; Path=/")
        self.send_json(200, {"set": True})


class CsvHandler(_Base):
    """A whole non-JSON body in one piece, as a file download or a report endpoint sends."""

    def get(self) -> None:
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.finish("name,value\nrows,2\n")


class RedirectHandler(_Base):
    def get(self) -> None:
        code = int(self.get_query_argument("code", "302"))
        to = self.get_query_argument("to")
        placeholder = self.get_query_argument("placeholder", None)
        if placeholder:  # a Location that asks for a secret, as a hostile upstream might
            to += f"?k={{{{secrets.{placeholder}}}}}"
        self.redirect(to, status=code)


class SlowHandler(_Base):
    async def get(self) -> None:
        delay = float(self.get_query_argument("delay", "1"))
        await asyncio.sleep(delay)
        self.send_json(200, {"slept": delay})

    def on_connection_close(self) -> None:
        """The caller hung up before the answer: note it (proves a proxy cancels upstream)."""
        self.upstream.hung_up.append(self.request.path)


class StreamThenFailHandler(_Base):
    """Sends part of a chunked body, then drops the connection without the final chunk.

    It pauses well past the proxy's idle flush before dropping, so the proxy has released
    (and sent its headers with) what came before: the drop then lands mid-stream, not
    before the answer started (a pause equal to the flush delay made that a race).
    """

    async def get(self) -> None:
        self.set_header("Content-Type", "text/plain")
        for index in range(3):
            self.write(f"chunk {index}\n")
            await self.flush()
            await asyncio.sleep(self.upstream.stream_delay)
        await asyncio.sleep(4 * IDLE_FLUSH_S)
        self._auto_finish = False  # finishing would write to the closed stream
        stream = self.request.connection.stream  # type: ignore[attr-defined]
        stream.close()


class EncodedHandler(_Base):
    def get(self) -> None:
        coding = self.get_query_argument("coding", "gzip")
        layers = int(self.get_query_argument("layers", "1"))
        body = json.dumps({"headers": dict(self.request.headers)}).encode()
        for _ in range(layers):
            body = zlib.compress(body) if coding == "deflate" else gzip.compress(body)
        self.set_header("Content-Type", "application/json")
        self.set_header("Content-Encoding", coding)
        self.finish(body)


class OpenAIModelsHandler(_Base):
    """``GET /v1/models``: the cheap call a connection's Test makes (401 on a wrong key)."""

    def get(self) -> None:
        if self.request.headers.get("Authorization") != f"Bearer {self.upstream.api_key}":
            self.send_json(401, {"error": {"message": "Incorrect API key provided.",
                                           "code": "invalid_api_key"}})
            return
        self.send_json(200, {"object": "list", "data": [
            {"id": "upstream-model", "object": "model", "owned_by": "tests"}]})


class StatusHandler(_Base):
    def _status(self, code: str) -> None:
        status = int(code)
        self.set_status(status)
        if status in (204, 304):
            self.finish()
        else:
            self.send_json(status, {"status": status})

    get = post = put = patch = delete = _status


class AzureChatHandler(OpenAIChatHandler):
    """Azure OpenAI: the key in ``api-key`` and an ``api-version`` query parameter."""

    def key_ok(self) -> bool:
        return (self.request.headers.get("api-key") == self.upstream.api_key
                and bool(self.get_query_argument("api-version", "")))


class GeminiHandler(_Base):
    """``POST /v1[beta]/models/{model}:generateContent`` (or ``:streamGenerateContent?alt=sse``),
    the key in ``x-goog-api-key``, as Google's Gemini API."""

    async def post(self, model: str, method: str) -> None:
        if self.request.headers.get("x-goog-api-key") != self.upstream.api_key:
            self.send_json(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                           "message": "API key not valid."}})
            return

        def answer(text: str, finish: str | None) -> dict[str, Any]:
            candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"},
                                         "index": 0}
            if finish:
                candidate["finishReason"] = finish
            return {"candidates": [candidate], "modelVersion": model, "usageMetadata": {
                "promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8}}

        if method == "generateContent":
            self.send_json(200, answer(CONTENT, "STOP"))
            return
        self.start_sse()
        for index, piece in enumerate(CONTENT_PIECES):
            if index:
                await asyncio.sleep(self.upstream.stream_delay)
            last = index == len(CONTENT_PIECES) - 1
            await self.send_event(json.dumps(answer(piece, "STOP" if last else None)))


class CohereChatHandler(_Base):
    """``POST /v2/chat``: Cohere's chat, JSON or SSE with its event types, Bearer key."""

    async def post(self) -> None:
        if self.request.headers.get("Authorization") != f"Bearer {self.upstream.api_key}":
            self.send_json(401, {"message": "invalid api token"})
            return
        body = self.json_body() or {}
        usage = {"billed_units": {"input_tokens": 5, "output_tokens": 3},
                 "tokens": {"input_tokens": 5, "output_tokens": 3}}
        if not body.get("stream"):
            self.send_json(200, {"id": "cohere-upstream", "finish_reason": "COMPLETE",
                                 "message": {"role": "assistant",
                                             "content": [{"type": "text", "text": CONTENT}]},
                                 "usage": usage})
            return
        events: list[dict[str, Any]] = [
            {"type": "message-start", "id": "cohere-upstream",
             "delta": {"message": {"role": "assistant", "content": []}}},
            {"type": "content-start", "index": 0,
             "delta": {"message": {"content": {"type": "text", "text": ""}}}},
            *({"type": "content-delta", "index": 0,
               "delta": {"message": {"content": {"text": piece}}}} for piece in CONTENT_PIECES),
            {"type": "content-end", "index": 0},
            {"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": usage}},
        ]
        self.start_sse()
        for index, event in enumerate(events):
            if index:
                await asyncio.sleep(self.upstream.stream_delay)
            await self.send_event(json.dumps(event), event=event["type"])


class GitHubUserHandler(_Base):
    """``GET /user``: GitHub's REST API (Bearer key, ``X-GitHub-Api-Version``)."""

    def get(self) -> None:
        headers = self.request.headers
        if headers.get("Authorization") != f"Bearer {self.upstream.api_key}":
            self.send_json(401, {"message": "Bad credentials"})
        elif not headers.get("X-GitHub-Api-Version"):
            self.send_json(400, {"message": "X-GitHub-Api-Version is required here"})
        else:
            self.send_json(200, {"login": "octocat", "id": 1})


#: Provider look-alikes beside OpenAI's and Anthropic's: Mistral, Together and Hugging Face's
#: router speak OpenAI's ``/v1/chat/completions``; Groq and Bedrock serve it below
#: ``/openai/v1``.
PROVIDER_ROUTES: list[tuple[str, type[_Base]]] = [
    (r"/openai/v1/chat/completions", OpenAIChatHandler),
    (r"/openai/deployments/([^/]+)/chat/completions", AzureChatHandler),
    (r"/v1(?:beta)?/models/([^/:]+):(generateContent|streamGenerateContent)", GeminiHandler),
    (r"/v2/chat", CohereChatHandler),
    (r"/user", GitHubUserHandler),
]


def make_app(api_key: str = DEFAULT_API_KEY, stream_delay: float = 0.05) -> Application:
    """The upstream as a plain tornado ``Application`` (records into ``app.upstream``)."""
    settings = _Settings(api_key=api_key, stream_delay=stream_delay)
    args = {"settings": settings}
    app = Application(
        [
            (r"/v1/chat/completions", OpenAIChatHandler, args),
            (r"/v1/models", OpenAIModelsHandler, args),
            (r"/v1/messages", AnthropicMessagesHandler, args),
            (r"/echo(/.*)?", EchoHandler, args),
            (r"/echo-header", EchoHeaderHandler, args),
            (r"/redirect", RedirectHandler, args),
            (r"/report.csv", CsvHandler, args),
            (r"/set-cookie", SetCookieHandler, args),
            (r"/slow", SlowHandler, args),
            (r"/stream-then-fail", StreamThenFailHandler, args),
            (r"/status/([1-5][0-9][0-9])", StatusHandler, args),
            (r"/encoded", EncodedHandler, args),
            *((path, handler, args) for path, handler in PROVIDER_ROUTES),
        ],
    )
    app.upstream = settings  # type: ignore[attr-defined]
    return app


class Upstream:
    """A running upstream: ``url``, ``port``, ``requests`` (in arrival order), ``stop()``."""

    def __init__(self, api_key: str = DEFAULT_API_KEY, stream_delay: float = 0.05) -> None:
        self.api_key = api_key
        self.app = make_app(api_key=api_key, stream_delay=stream_delay)
        self._settings: _Settings = self.app.upstream  # type: ignore[attr-defined]
        self._sockets = bind_sockets(0, "127.0.0.1")
        self.port: int = self._sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: HTTPServer | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="test-upstream", daemon=True)
        self._stopped = False

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._settings.requests

    @property
    def hung_up(self) -> list[str]:
        """Paths of slow requests whose caller closed the connection before the answer."""
        return self._settings.hung_up

    @property
    def stream_delay(self) -> float:
        """Seconds between streamed events; tests may change it while the server runs."""
        return self._settings.stream_delay

    @stream_delay.setter
    def stream_delay(self, seconds: float) -> None:
        self._settings.stream_delay = seconds

    def __repr__(self) -> str:
        return f"Upstream(url={self.url!r}, requests={len(self.requests)})"

    def start(self) -> Upstream:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise RuntimeError("test upstream failed to start") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._listen())
            self._loop = loop
            self._ready.set()
            loop.run_forever()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        except BaseException as err:
            self._error = err
        finally:
            self._ready.set()
            loop.close()

    async def _listen(self) -> None:
        # Inside a running loop, so tornado binds to this thread's loop without warnings.
        self._server = HTTPServer(self.app)
        self._server.add_sockets(self._sockets)

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.stop()
        # A /slow handler may still be sleeping: it is cancelled with the loop's tasks.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._server.close_all_connections(), timeout=2)

    def stop(self) -> None:
        """Close the listener and every connection, then end the thread. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        loop = self._loop
        if self._thread.is_alive() and loop is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(timeout=10)
        else:
            for sock in self._sockets:
                sock.close()

    def __enter__(self) -> Upstream:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def start_upstream(api_key: str = DEFAULT_API_KEY, stream_delay: float = 0.05) -> Upstream:
    """Start an upstream on 127.0.0.1 on a free port; stop it with ``.stop()`` or ``with``."""
    return Upstream(api_key=api_key, stream_delay=stream_delay).start()


def iter_upstream(**kwargs: Any) -> Iterator[Upstream]:
    """Generator body for a pytest fixture: ``yield from iter_upstream(api_key=...)``."""
    upstream = start_upstream(**kwargs)
    try:
        yield upstream
    finally:
        upstream.stop()
