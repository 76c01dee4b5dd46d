"""The egress endpoints: the reverse proxy for connections and the ad-hoc request.

Thin by design: turn the HTTP request into a ``CallSpec`` (names and templates only), let
``egress.outbound`` do the call, and relay status, headers and body chunks as they come.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
import logging
import re
import time
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

from tornado.http1connection import HTTP1Connection
from tornado.iostream import StreamClosedError

from ..boundary.hosts import normalize_host_pattern
from ..boundary.placeholders import PLACEHOLDER_RE, UnknownPlaceholder
from ..egress.outbound import CallSpec, UpstreamResponse
from ..errors import EgressRefused, InvalidInput, RateLimited, SecretsError, UpstreamFailed
from ..protocol import ERROR_HEADER, LOGGER_NAME, OVERHEAD_HEADER
from ..services.audit import split_destination
from ..services.tokens import KEY_HEADERS, token_from_headers
from ..store import ConnectionRecord
from ..validation import validate_header, validate_http_url
from .base import Route, SecretsHandler, http_error, status_for

# Caller headers never forwarded: hop-by-hop, the caller's credentials for *this* server
# (wherever an SDK puts its key: ``KEY_HEADERS``), and what the client recomputes.
REQUEST_HEADERS_DROPPED = {
    "host", "connection", "keep-alive", "proxy-authorization", "proxy-connection", "te",
    "trailer", "transfer-encoding", "upgrade", "content-length", "cookie", "authorization",
    *KEY_HEADERS, "x-xsrftoken", "x-csrftoken", "origin", "referer",
    "accept-encoding", "forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
}
# Headers every tornado answer starts with (``RequestHandler.clear``): an upstream's replaces.
_SET_BY_TORNADO = frozenset({"server", "date"})
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MAX_REQUEST_HEADERS = 64


class EgressHandler(SecretsHandler):
    """Shared relay logic; errors carry ``X-Jupyter-Secrets-Error`` to tell them from upstream's."""

    auth_action = "execute"
    _client_gone = False
    _relay_task: asyncio.Task[Any] | None = None
    _relayed_bytes = 0
    #: The status and headers are the upstream's from here on: an app base must not relabel.
    relays_upstream = False

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header(ERROR_HEADER, "1")
        super().write_error(status_code, **kwargs)

    def on_connection_close(self) -> None:
        """The caller hung up: cancel the upstream call too, even while it is silent."""
        self._client_gone = True
        if self._relay_task is not None and not self._relay_task.done():
            self._relay_task.cancel()
        super().on_connection_close()

    async def relay(self, spec: CallSpec, limited: ConnectionRecord | None = None) -> None:
        self._relay_task = asyncio.current_task()
        started = time.perf_counter()
        upstream: UpstreamResponse | None = None
        failure: SecretsError | None = None
        try:
            if limited is not None:  # counted in the store: limits hold across processes
                await asyncio.get_running_loop().run_in_executor(
                    None, self.runtime.limits.connection_call, limited, self.caller.name)
            async with self.runtime.egress.call(spec, self.caller) as upstream:
                await self._relay(upstream)
        except UpstreamFailed as error:
            failure = error
            if self._headers_written:
                self._break_stream(str(error))
                return
            raise self.http_error_for(error) from None
        except SecretsError as error:
            failure = error
            raise self.http_error_for(error) from None
        except asyncio.CancelledError:
            if not self._client_gone:
                raise
            self._finished = True  # nobody is left to answer
        finally:
            # The call is over: a hang-up from now on (an SDK closes as soon as it has read
            # ``data: [DONE]``) must not cancel the audit record.
            self._relay_task = None
            await self._audit_call(spec, upstream, failure, started)

    async def _audit_call(
        self, spec: CallSpec, upstream: UpstreamResponse | None, failure: SecretsError | None,
        started: float,
    ) -> None:
        """One event per call: names, destination (no query), status, bytes, time, reason."""
        refused = isinstance(failure, (EgressRefused, UnknownPlaceholder, RateLimited))
        host, path = split_destination(spec.url)
        await self.audit(
            "refused_call" if refused else "proxy_call" if spec.connection else "request_call",
            secrets=upstream.injected if upstream else spec.names(),
            connection=spec.connection, host=host, method=spec.method, path=path,
            status=upstream.status if upstream else status_for(failure) if failure else None,
            bytes=self._relayed_bytes if upstream else None,
            duration_ms=(time.perf_counter() - started) * 1000,
            reason=str(failure) if failure else "the caller hung up" if self._client_gone
            else None,
            grant=upstream.grant if upstream else None,
        )

    async def _relay(self, upstream: UpstreamResponse) -> None:
        self.clear_header("Content-Type")
        self.set_status(upstream.status, upstream.reason or None)
        for name, value in upstream.headers:
            if name.lower() in _SET_BY_TORNADO:  # one value, the upstream's, not two
                self.set_header(name, value)
            else:
                self.add_header(name, value)
        self.set_header("X-Accel-Buffering", "no")
        self.set_header("Cache-Control", "no-cache")
        self.set_header(OVERHEAD_HEADER, f"{upstream.overhead_ms:.2f}")
        self.relays_upstream = True
        stream = self.request.connection.stream if isinstance(
            self.request.connection, HTTP1Connection) else None
        if stream is not None:  # small chunks (SSE events) leave at once, not after Nagle
            stream.set_nodelay(True)
        try:
            # The first chunk is already here (the encoding check read it): the headers go
            # out with it, in one send. Once the whole declared body is in, what is left
            # waits for finish(), which sends it with a Content-Length: one send, no chunks.
            async for chunk in upstream.chunks():
                if self._client_gone:
                    return
                self.write(chunk)
                self._relayed_bytes += len(chunk)
                if not upstream.all_received():
                    await self.flush()
        except StreamClosedError:
            self._client_gone = True  # leaving the block closes the upstream call

    def _break_stream(self, reason: str) -> None:
        """Headers are out: the only honest signal left is to cut the connection."""
        logging.getLogger(LOGGER_NAME).warning(
            "jupyter-secrets: upstream failed mid-stream: %s", reason)
        connection = self.request.connection
        if isinstance(connection, HTTP1Connection):
            connection.close()
        self._finished = True  # tornado must not write a clean end after the cut


_CONNECTION_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


@functools.lru_cache(maxsize=1024)
def _host_pattern(base_url: str) -> str:
    """A connection's own host as an allowed-host pattern (parsed once per base URL)."""
    return normalize_host_pattern(urlsplit(base_url).netloc)


class ProxyHandler(EgressHandler):
    """``/proxy/{connection}/{path}``: any SDK works with ``base_url`` pointed here."""

    async def _proxy(self, connection: str, path: str = "") -> None:
        self.require_reader()
        limit = self.runtime.settings.max_proxy_body_bytes
        if len(self.request.body) > limit:
            raise http_error(413, f"The request body exceeds the proxy's {limit}-byte limit.")
        connections = self.runtime.connections
        cached = connections.cached(connection) if _CONNECTION_NAME.fullmatch(connection) else ...
        record = (await self.call(connections.get, connection) if cached is ...
                  else self._found(cached, connection))
        if self.caller.grant(record.shared_with) is None:
            raise http_error(404, f"No connection named {record.name}.")
        base = record.base_url.rstrip("/")
        url = f"{base}/{path.lstrip('/')}" if path else base
        token = token_from_headers(self.request.headers)
        if self.request.query:
            if token and token in unquote(self.request.query):
                raise http_error(400, "The query string holds your kernel token, which never "
                                 "goes upstream: send it in the Authorization header only (the "
                                 "proxy puts the connection's key where the provider wants it).")
            url += "?" + self.request.query
        spec = CallSpec(
            method=self.request.method or "GET",
            url=url,
            headers=self._forwarded_headers(record, token),
            connection_headers=list(record.headers.items()),
            content=self.request.body or None,
            auth=record.auth,
            auth_secret=record.secret,
            connection=record.name,
            extra_allowed={name: [_host_pattern(record.base_url)]
                           for name in record.secrets_used()},
        )
        limits = record.rate_limit is not None or record.daily_quota is not None
        await self.relay(spec, record if limits else None)

    @staticmethod
    def _found(record: ConnectionRecord | None, name: str) -> ConnectionRecord:
        if record is None:
            raise http_error(404, f"No connection named {name.strip().lower()}.")
        return record

    def _forwarded_headers(
        self, record: ConnectionRecord, token: str | None
    ) -> list[tuple[str, str]]:
        """The caller's headers less ours, the connection's own (its auth header included),
        and any other copy of the caller's token: it never goes upstream."""
        overridden = {k.lower() for k in record.headers}
        if record.auth.get("header"):
            overridden.add(record.auth["header"].lower())
        kept = [
            (k, v) for k, v in self.request.headers.get_all()
            if k.lower() not in REQUEST_HEADERS_DROPPED and k.lower() not in overridden
            and "{{" not in v  # callers cannot smuggle placeholders in through the proxy
            and (token is None or token not in v)
        ]
        return kept

    get = head = post = put = patch = delete = options = _proxy


def _quote_keeping_placeholders(text: str) -> str:
    parts: list[str] = []
    last = 0
    for match in PLACEHOLDER_RE.finditer(text):
        parts.append(quote(text[last:match.start()], safe=""))
        parts.append(f"{{{{secrets.{match.group(1)}}}}}")
        last = match.end()
    parts.append(quote(text[last:], safe=""))
    return "".join(parts)


class RequestHandler(EgressHandler):
    """``POST /request``: one ad-hoc call whose text fields may hold ``{{secrets.NAME}}``."""

    FIELDS = frozenset({"method", "url", "headers", "params", "body", "body_base64", "json"})

    async def post(self) -> None:
        self.require_reader()
        body = self.read_json(allowed=set(self.FIELDS), required=frozenset({"url"}))
        spec = self._spec(body)
        if not spec.names():
            raise http_error(
                422, "This request uses no {{secrets.NAME}} placeholder: make plain calls "
                "directly from the kernel; the proxy only sends calls that need a secret."
            )
        await self.relay(spec)

    @staticmethod
    def _spec(body: dict[str, Any]) -> CallSpec:
        method = str(body.get("method", "GET")).upper()
        if method not in METHODS:
            raise http_error(422, f"method must be one of {', '.join(METHODS)}.")
        try:
            url = validate_http_url(body["url"])
            headers = body.get("headers") or {}
            if not isinstance(headers, dict) or len(headers) > MAX_REQUEST_HEADERS:
                raise InvalidInput(f"headers must be an object of at most {MAX_REQUEST_HEADERS} "
                                   "name: value pairs.")
            for name, value in headers.items():
                validate_header(name, value)
        except InvalidInput as error:
            raise http_error(422, str(error)) from None
        params = body.get("params") or {}
        if not isinstance(params, dict) or not all(
            isinstance(v, str | int | float | bool) for v in params.values()
        ):
            raise http_error(422, "params must be an object of strings or numbers.")
        if params:
            # Encode everything but placeholders, which are filled in (encoded) later.
            query = "&".join(
                f"{quote(str(k), safe='')}={_quote_keeping_placeholders(str(v))}"
                for k, v in params.items()
            )
            url += ("&" if urlsplit(url).query else "?") + query
        given = [k for k in ("body", "body_base64", "json") if body.get(k) is not None]
        if len(given) > 1:
            raise http_error(422, "Send at most one of body, body_base64 and json.")
        content: bytes | None = None
        template: Literal["text", "json"] | None = None
        if body.get("body") is not None:
            if not isinstance(body["body"], str):
                raise http_error(422, "body must be a string (use json for objects).")
            content, template = body["body"].encode("utf-8"), "text"
        elif body.get("json") is not None:
            content, template = json.dumps(body["json"]).encode("utf-8"), "json"
            headers = {"Content-Type": "application/json", **headers}
        elif body.get("body_base64") is not None:
            try:
                content = base64.b64decode(str(body["body_base64"]), validate=True)
            except (binascii.Error, ValueError):
                raise http_error(422, "body_base64 is not valid base64.") from None
        dropped = {"host", "content-length", "transfer-encoding", "connection", "cookie"}
        return CallSpec(
            method=method,
            url=url,
            headers=[(k, v) for k, v in headers.items() if k.lower() not in dropped],
            content=content,
            body_template=template,
        )


routes: list[Route] = [
    ("proxy/(?P<connection>[^/]+)/?(?P<path>.*)", ProxyHandler),
    ("request", RequestHandler),
]
