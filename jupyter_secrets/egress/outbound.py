"""Build and send outbound calls with secrets injected: the other module that sees plaintext.

Everything before this module holds names; everything after it holds scrubbed bytes. Here
the named values are opened, checked against where they may go, put into the request, and
every byte that comes back is scrubbed of them before it leaves this module.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote, urljoin, urlsplit

import httpx

from ..boundary.hosts import host_allowed
from ..boundary.placeholders import (
    UnknownPlaceholder,
    contains_header_unsafe,
    find_names,
    substitute,
)
from ..boundary.scrub import IDLE_FLUSH_S, Scrubber
from ..errors import EgressRefused, SecretNotFound, UpstreamFailed, UpstreamTimeout
from ..protocol import LOGGER_NAME
from ..services.access import Caller
from ..services.secrets import SecretsService
from ..store import SecretRecord
from ..store.records import now_iso
from .http1 import DECODABLE_ENCODINGS, OutboundClient, OutboundRequest, OutboundResponse
from .redaction import ValueIndex
from .transport import address_policy

log = logging.getLogger(LOGGER_NAME)
MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Never relayed back to the caller: connection-level, or meaningless once we re-encode.
RESPONSE_HEADERS_DROPPED = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-connection", "te", "trailer",
    "transfer-encoding", "upgrade", "content-length", "content-encoding", "set-cookie",
}
# Only encodings the client decodes (gzip, deflate) are asked for, so every byte relayed can
# be scrubbed; any other Content-Encoding in an answer is refused, never passed through raw.
ACCEPT_ENCODING = ", ".join(DECODABLE_ENCODINGS)
# A body still compressed after decoding what the upstream declared (gzip inside gzip, a
# zstd or xz stream) cannot be scrubbed either. Brotli has no magic number: since it is
# never asked for, a brotli body can only arrive inside a declared, decoded encoding.
_COMPRESSED_MAGIC = (b"\x1f\x8b\x08", b"\x28\xb5\x2f\xfd", b"\xfd7zXZ\x00", b"BZh",
                     b"\x78\x01", b"\x78\x9c", b"\x78\xda")
# Where a connection's own auth scheme puts its key: the admin chose it with the connection.
AUTH_PLACEMENT = {"bearer": "header", "header": "header", "basic": "header", "query": "query"}
_PLACEMENT_WORDS = {"header": "a header", "query": "the query string", "path": "the URL path",
                    "body": "the request body"}


@dataclass(frozen=True)
class CallSpec:
    """An outbound call as templates and names: safe to log, holds no value."""

    method: str
    url: str
    headers: Sequence[tuple[str, str]] = ()
    content: bytes | None = None
    body_template: Literal["text", "json"] | None = None  # body holds placeholders
    auth: Mapping[str, str] = field(default_factory=lambda: {"scheme": "none"})
    auth_secret: str | None = None
    connection: str | None = None
    # Secret name -> extra host patterns it may go to (a connection's own host).
    extra_allowed: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # Headers an admin defined with the connection: their placeholders need no placement.
    connection_headers: Sequence[tuple[str, str]] = ()

    def names(self) -> set[str]:
        """Every secret the call needs, wherever named (a host placeholder is refused later)."""
        names = set(self.placements_used()) | find_names(self.url)
        for _, value in self.connection_headers:
            names |= find_names(value)
        if self.auth_secret:
            names.add(self.auth_secret)
        return names

    def placements_used(self) -> dict[str, set[str]]:
        """Secret name -> where the *caller* put it: path, query, header, body (worked out
        once per call: the spec is frozen, and several checks ask)."""
        cached: dict[str, set[str]] | None = self.__dict__.get("_placements")
        if cached is None:
            cached = self._find_placements()
            self.__dict__["_placements"] = cached  # a frozen dataclass: no __setattr__
        return cached

    def _find_placements(self) -> dict[str, set[str]]:
        used: dict[str, set[str]] = {}

        def note(text: str, placement: str) -> None:
            for name in find_names(text):
                used.setdefault(name, set()).add(placement)

        parts = urlsplit(self.url)  # a placeholder in the host is refused, not placed
        note(parts.path, "path")
        note(parts.query, "query")
        note(parts.fragment, "path")  # never sent, but not a place to hide one either
        for _, value in self.headers:
            note(value, "header")
        if self.body_template and self.content:
            note(self.content.decode("utf-8", "replace"), "body")
        return used

    def all_headers(self) -> list[tuple[str, str]]:
        return [*self.headers, *self.connection_headers]


@dataclass
class UpstreamResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    injected: tuple[str, ...]
    grant: str
    host: str
    overhead_ms: float
    _response: OutboundResponse
    _scrubber: Scrubber
    _body: AsyncIterator[bytes]

    async def chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive, scrubbed across chunk boundaries.

        When bytes are released never depends on the values (``boundary/scrub.py``): SSE and
        NDJSON by complete event or line, anything else through a fixed window that is also
        released once the upstream has been silent for ``IDLE_FLUSH_S``. Transport errors in
        mid-stream are raised (as ``UpstreamFailed``) so the caller can break its own stream
        instead of ending it cleanly.
        """
        stream = self._scrubber.stream(self._response.headers.get("content-type"))
        source = self._body
        waiting: asyncio.Future[bytes | None] | None = None  # the next read, while timed
        try:
            while True:
                if stream.idle_flushable and not self.all_received():
                    if waiting is None:
                        waiting = asyncio.ensure_future(anext(source, None))
                    done, _ = await asyncio.wait((waiting,), timeout=IDLE_FLUSH_S)
                    if not done:  # silent upstream: release the window, keep waiting
                        out = stream.flush()
                        if out:
                            yield out
                        continue
                    chunk, waiting = waiting.result(), None
                else:
                    chunk = await (waiting if waiting is not None else anext(source, None))
                    waiting = None
                if chunk is None:
                    break
                out = stream.feed(chunk)
                if out:
                    yield out
        except httpx.TimeoutException:
            raise UpstreamTimeout(f"{self.host} stopped sending (idle timeout).") from None
        except httpx.HTTPError as error:
            raise UpstreamFailed(
                f"{self.host} broke the response: {self._scrubber.scrub_text(str(error))}"
            ) from None
        finally:
            if waiting is not None and not waiting.done():
                waiting.cancel()
        tail = stream.finish()
        if tail:
            yield tail


    def all_received(self) -> bool:
        """The whole declared body is in: the next read ends at once, no silence to time."""
        length = self._response.headers.get("content-length")
        return (length is not None and length.isdigit()
                and self._response.num_bytes_downloaded >= int(length))


class UsageRecorder:
    """Last-used bookkeeping off the hot path: noted in memory, written at most once a second.

    A store write costs milliseconds; a proxied call should not pay it, nor fail with it.
    """

    def __init__(self, service: SecretsService, interval_s: float = 1.0) -> None:
        self.service = service
        self.interval_s = interval_s
        self._pending: list[str] = []
        self._scheduled = False

    def note(self, names: Iterable[str]) -> None:
        self._pending.extend(names)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(self.interval_s, self._flush_soon)

    def _flush_soon(self) -> None:
        self._scheduled = False
        names, self._pending = self._pending, []
        asyncio.get_running_loop().run_in_executor(None, self._write, names)

    def _write(self, names: list[str]) -> None:
        try:
            self.service.store.record_use(Counter(names), now_iso())
            self.service.forget_listing()  # listings show use counts
        except Exception:  # bookkeeping must never break calls
            log.warning("jupyter-secrets: could not record use of %s", ", ".join(set(names)))

    def flush(self) -> None:
        """Write what is pending now (at shutdown)."""
        names, self._pending = self._pending, []
        if names:
            self._write(names)


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


async def _decodable_body(response: OutboundResponse) -> AsyncIterator[bytes]:
    """The decoded body, or ``UpstreamFailed`` (502) if it cannot be decoded for scrubbing.

    Checked before anything is relayed: the declared Content-Encoding must be one the client
    decodes, and the first decoded bytes must not be another compressed stream.
    """
    codings = [c.strip().lower() for c in response.headers.get_list("content-encoding",
                                                                       split_commas=True)]
    unknown = [c for c in codings if c and c not in (*DECODABLE_ENCODINGS, "identity")]
    host = response.url.host
    if unknown:
        raise UpstreamFailed(
            f"{host} answered in an encoding the proxy cannot decode ({', '.join(unknown)}), so "
            "the answer could not be checked for secret values; nothing was relayed."
        )
    body = response.aiter_bytes()
    try:
        first = await anext(body, b"")
    except httpx.DecodingError:
        raise UpstreamFailed(
            f"{host} sent a body that does not decode as its declared encoding "
            f"({', '.join(codings)}); nothing was relayed."
        ) from None
    except httpx.HTTPError as error:
        raise UpstreamFailed(f"{host} broke the response: {type(error).__name__}") from None
    if first.startswith(_COMPRESSED_MAGIC):
        raise UpstreamFailed(
            f"{host} answered with a compressed body inside its declared encoding, which the "
            "proxy cannot check for secret values; nothing was relayed."
        )

    async def chained() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in body:
            yield chunk

    return chained()


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if find_names(parts.netloc):
        # The host is what the allowlist checks; a value in it would also leak through DNS.
        raise EgressRefused("A {{secrets.NAME}} placeholder cannot be part of the host; use it "
                            "in the path, query, headers or body.")
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise EgressRefused(f"Only http(s) URLs with a host can be called (got {parts.scheme}).")
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise EgressRefused("The URL has an invalid port.") from None
    return parts.hostname, port


class Egress:
    def __init__(
        self,
        service: SecretsService,
        client: OutboundClient,
        *,
        values: ValueIndex,
        max_redirects: int = MAX_REDIRECTS,
    ) -> None:
        self.service = service
        self.values = values
        self.client = client
        self.max_redirects = max_redirects
        self.usage = UsageRecorder(service)

    def __repr__(self) -> str:
        return f"Egress(max_redirects={self.max_redirects})"

    @staticmethod
    def _open_values(index: ValueIndex, names: set[str]) -> dict[str, tuple[SecretRecord, str]]:
        """Values from the value index: decrypted once per version, not once per call."""
        try:
            return index.lookup(names)
        except SecretNotFound as error:
            raise UnknownPlaceholder(error.name) from None

    @staticmethod
    def _check_placements(spec: CallSpec, opened: Mapping[str, tuple[SecretRecord, str]]) -> None:
        """A value goes only where a person allowed it (issue: transforms by echoing hosts)."""
        for name, used in sorted(spec.placements_used().items()):
            record = opened[name][0]
            for placement in sorted(used - set(record.placements)):
                allowed = ", ".join(record.placements)
                raise EgressRefused(
                    f"Secret {name} may not be placed in {_PLACEMENT_WORDS[placement]} "
                    f"(its placements setting allows: {allowed}). An admin can add "
                    f"{placement!r} to the secret's placements (jupyter secrets edit {name} "
                    f"--placement {placement}, or the Secrets sidebar) if the destination "
                    "neither echoes nor stores it."
                )

    @staticmethod
    def _patterns(spec: CallSpec, record: SecretRecord) -> list[str]:
        return [*record.allowed_hosts, *spec.extra_allowed.get(record.name, ())]

    def _check_destination(
        self, spec: CallSpec, url: str, opened: Mapping[str, tuple[SecretRecord, str]]
    ) -> list[str]:
        host, port = _host_port(url)
        patterns: list[str] = []
        for name, (record, _) in opened.items():
            allowed = self._patterns(spec, record)
            if not host_allowed(host, port, allowed):
                where = ", ".join(allowed) or "no host yet"
                raise EgressRefused(
                    f"Secret {name} may not be sent to {host} (allowed: {where}). An admin can "
                    "add the host to the secret's allowed hosts."
                )
            patterns.extend(allowed)
        return patterns

    def _build(
        self, spec: CallSpec, method: str, url: str, content: bytes | None,
        values: Mapping[str, str], *, fill_url: bool,
    ) -> OutboundRequest:
        """The request for one hop; a redirect's Location is used as given (``fill_url``)."""
        def header_value(name: str, template: str) -> str:
            for secret in find_names(template):
                if contains_header_unsafe(values[secret]):
                    raise EgressRefused(
                        f"Secret {secret} contains a line break or NUL character, so it cannot "
                        f"go into the {name} header. Replace its value."
                    )
                if not values[secret].isascii() and not _latin1(values[secret]):
                    raise EgressRefused(
                        f"Secret {secret} holds characters an HTTP header cannot carry (only "
                        f"Latin-1 can), so it cannot go into the {name} header."
                    )
            return substitute(template, values)

        template_url = fill_url and not find_names(url)  # nothing of a value in it
        if fill_url and not template_url:
            url = substitute(url, {k: quote(v, safe="") for k, v in values.items()})
        headers = [(k, header_value(k, v)) for k, v in spec.all_headers()
                   if k.lower() != "accept-encoding"]
        headers.append(("Accept-Encoding", ACCEPT_ENCODING))
        params: dict[str, str] = {}
        scheme = spec.auth.get("scheme", "none")
        if spec.auth_secret and scheme != "none":
            value = values[spec.auth_secret]
            if scheme == "query":
                params[spec.auth["param"]] = value
            else:
                token = f"{{{{secrets.{spec.auth_secret}}}}}"
                if scheme == "bearer":
                    headers.append(("Authorization", header_value("Authorization",
                                                                  f"Bearer {token}")))
                elif scheme == "header":
                    headers.append((spec.auth["header"], header_value(spec.auth["header"],
                                                                       token)))
                elif scheme == "basic":
                    header_value("Authorization", token)  # refuses unsafe values
                    pair = f"{spec.auth['username']}:{value}".encode()
                    headers.append(("Authorization", "Basic " + base64.b64encode(pair).decode()))
        if spec.body_template and content:
            if spec.body_template == "json":  # a value with quotes must not break out
                values = {k: json.dumps(v)[1:-1] for k, v in values.items()}
            content = substitute(content.decode("utf-8"), values).encode("utf-8")
        # Header values go out as Latin-1 bytes (HTTP allows it; checked above).
        encoded = [(k.encode("ascii"), v.encode("latin-1")) for k, v in headers]
        request = self.client.build_one(method, url, encoded, content, template_url=template_url)

        if params:
            request.url = request.url.copy_merge_params(params)
        return request

    @staticmethod
    def _grants(
        spec: CallSpec, opened: Mapping[str, tuple[SecretRecord, str]], caller: Caller
    ) -> str:
        """What lets the caller use each secret; one not shared with them counts as missing.

        The grants, joined, go to the audit log (``everyone``, ``group:analysts``...).
        """
        grants: set[str] = set()
        for name, (record, _) in sorted(opened.items()):
            granted = caller.grant(record.shared_with)
            if granted is None:
                if spec.connection and name not in spec.placements_used():
                    raise EgressRefused(
                        f"Connection {spec.connection} uses a secret that is not shared with "
                        "you; ask a secrets admin to share it.")
                raise UnknownPlaceholder(name)
            grants.add(granted)
        return ",".join(sorted(grants))

    @asynccontextmanager
    async def call(self, spec: CallSpec, caller: Caller) -> AsyncIterator[UpstreamResponse]:
        started = time.perf_counter()
        index = self.values
        names = spec.names()
        opened = index.lookup_cached(names)  # memory only; None when the store must be read
        if opened is None:
            opened = await asyncio.get_running_loop().run_in_executor(
                None, self._open_values, index, names
            )
        grant = self._grants(spec, opened, caller)
        values = {name: value for name, (_, value) in opened.items()}
        extra = {}
        if spec.auth.get("scheme") == "basic" and spec.auth_secret:
            extra[spec.auth_secret] = [f"{spec.auth['username']}:{values[spec.auth_secret]}"]
        scrubber = index.scrubber(opened, extra)  # cached per set of (name, version)
        method, url, content = spec.method.upper(), spec.url, spec.content
        response: OutboundResponse | None = None
        try:
            for hop in range(self.max_redirects + 1):
                try:
                    patterns = self._check_destination(spec, url, opened)
                except EgressRefused as refusal:
                    if hop == 0:
                        raise
                    raise EgressRefused(f"The upstream redirected; not followed: {refusal}") \
                        from None
                if hop == 0:
                    self._check_placements(spec, opened)
                request = self._build(spec, method, url, content, values, fill_url=hop == 0)
                overhead_ms = (time.perf_counter() - started) * 1000
                try:
                    with address_policy(patterns):
                        response = await self.client.send_one(request)
                except httpx.TimeoutException:
                    raise UpstreamTimeout(
                        f"{request.url.host} did not answer in time; try again or raise "
                        "the timeout."
                    ) from None
                except httpx.HTTPError as error:
                    raise UpstreamFailed(
                        f"Could not reach {request.url.host}: "
                        f"{scrubber.scrub_text(str(error)) or type(error).__name__}"
                    ) from None
                location = response.headers.get("location")
                if not (response.is_redirect and location):
                    break
                await response.aclose()
                url = urljoin(url, location)
                if response.status_code == 303 or (
                    response.status_code in (301, 302) and method == "POST"
                ):
                    method, content = "GET", None
                started = time.perf_counter()
            else:
                raise UpstreamFailed(f"More than {self.max_redirects} redirects; not followed.")
            assert response is not None
            body = await _decodable_body(response)
            headers = scrubber.scrub_headers([
                (k, v) for k, v in response.headers.multi_items()
                if k.lower() not in RESPONSE_HEADERS_DROPPED
            ])
            yield UpstreamResponse(
                status=response.status_code,
                reason=response.reason_phrase,
                headers=headers,
                injected=tuple(sorted(opened)),
                grant=grant,
                host=response.url.host,
                overhead_ms=overhead_ms,
                _response=response,
                _scrubber=scrubber,
                _body=body,
            )
        finally:
            if response is not None:
                await response.aclose()
            if opened:
                self.usage.note(opened)
