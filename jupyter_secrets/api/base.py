"""What every secrets API handler shares: the runtime, the caller, JSON in and out, errors.

The handlers in this package serve the same REST API inside a Jupyter server and in the
secrets service. Each app binds them to its own tornado base class (jupyter_server's
``APIHandler``, or a plain ``RequestHandler``) and plugs in an :class:`Identity` that turns a
request into a :class:`Caller`; everything else (roles, checks, errors) is decided here, once.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from tornado import web
from tornado.ioloop import IOLoop

from ..errors import (
    AlreadyExists,
    Conflict,
    EgressRefused,
    IntegrityFailure,
    InvalidInput,
    MasterKeyError,
    NotFound,
    PermissionDenied,
    RateLimited,
    SecretsError,
    StoreUnavailable,
    TooLarge,
    UpstreamFailed,
    UpstreamTimeout,
)
from ..protocol import API_PATH
from ..runtime import RUNTIME_KEY, SecretsRuntime
from ..services.access import Caller, RolePolicy

T = TypeVar("T")
Action = Literal["read", "write", "execute"]
#: tornado settings keys: the app's Identity, and why the runtime could not start.
IDENTITY_KEY = "jupyter_secrets_identity"
UNAVAILABLE_KEY = "jupyter_secrets_unavailable"
MAX_JSON_DEPTH = 64

_STATUS: dict[type[SecretsError], int] = {
    InvalidInput: 422,
    TooLarge: 413,
    NotFound: 404,
    AlreadyExists: 409,
    Conflict: 409,
    PermissionDenied: 403,
    MasterKeyError: 503,
    IntegrityFailure: 500,
    EgressRefused: 403,
    UpstreamTimeout: 504,
    UpstreamFailed: 502,
    RateLimited: 429,
    StoreUnavailable: 503,
}


class Identity(Protocol):
    """How an app authenticates: request -> caller, and whether its own policy agrees."""

    policy: RolePolicy

    async def caller(self, handler: SecretsHandler) -> Caller | None: ...

    def allows(self, handler: SecretsHandler, caller: Caller, action: Action) -> bool: ...


def http_error(status: int, message: str) -> web.HTTPError:
    """An HTTPError whose message survives tornado's %-formatting of log messages."""
    return web.HTTPError(status, message.replace("%", "%%"))


def status_for(error: SecretsError) -> int:
    for cls in type(error).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 400


def json_problem(node: Any, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why a parsed JSON document cannot be accepted, or None: too deep, or a lone surrogate.

    JSON may spell ``"\\ud800"``, which Python parses into a string that cannot be encoded
    (so it would fail later, in the store or on the wire). Checked iteratively.
    """
    stack = [(node, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                return ("The request body holds an invalid Unicode character (a lone "
                        "surrogate such as \\ud800); send valid UTF-8 text.")
            continue
        if isinstance(item, dict):
            children: list[Any] = [*item.keys(), *item.values()]
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return f"The request body nests deeper than {max_depth} levels."
        stack.extend((child, depth + 1) for child in children)
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class SecretsHandler(web.RequestHandler):
    """Base of every secrets API handler; apps mix it with their own base class."""

    #: The authorization action checked with the app's policy; None: read for GET/HEAD.
    auth_action: ClassVar[Action | None] = None
    _caller: Caller | None = None

    @property
    def runtime(self) -> SecretsRuntime:
        runtime: SecretsRuntime = self.settings[RUNTIME_KEY]
        return runtime

    @property
    def identity(self) -> Identity:
        identity: Identity = self.settings[IDENTITY_KEY]
        return identity

    @property
    def access(self) -> RolePolicy:
        return self.identity.policy

    @property
    def caller(self) -> Caller:
        assert self._caller is not None, "prepare() authenticates every request"
        return self._caller

    async def prepare(self) -> None:
        result = super().prepare()
        if result is not None:
            await result
        if self._finished:  # the app's base answered already (a CORS preflight)
            return
        caller = await self.identity.caller(self)
        if caller is None:
            problem = getattr(self, "token_problem", None)
            raise http_error(403, problem or "Sign in to use the secrets API.")
        unavailable = self.settings.get(UNAVAILABLE_KEY)
        if unavailable:
            raise http_error(503, f"jupyter-secrets is unavailable: {unavailable}")
        action = self.auth_action or (
            "read" if self.request.method in ("GET", "HEAD") else "write"
        )
        if not self.identity.allows(self, caller, action):
            raise web.HTTPError(403, f"This server's policy does not allow {action} on secrets.")
        self._caller = caller

    def client_hints(self) -> dict[str, Any]:
        """What a front-end needs from this app to call back (the Hub's XSRF token).

        The app's base class says: it comes after the handlers in the MRO (``bind_routes``).
        """
        hints = getattr(super(), "client_hints", None)
        return dict(hints()) if callable(hints) else {}

    def full_api_url(self) -> str:
        """This API's absolute URL as the caller reached it."""
        return f"{self.request.protocol}://{self.request.host}{self.api_url()}"

    def api_url(self, *parts: str) -> str:
        """The absolute path of an API resource below this app's base URL."""
        segments = [str(self.settings.get("base_url", "/")), API_PATH, *parts]
        return "/" + "/".join(p.strip("/") for p in segments if p.strip("/"))

    # -- checks ----------------------------------------------------------------------------

    def _check(self, check: Callable[[], None]) -> None:
        try:
            check()
        except PermissionDenied as denied:
            raise http_error(403, str(denied)) from None

    def require_reader(self) -> None:
        self._check(lambda: self.access.require_reader(self.caller))

    def require_admin(self, what: str = "change secrets") -> None:
        self._check(lambda: self.access.require_admin(self.caller, what))

    def require_session(self, what: str) -> None:
        self._check(lambda: self.access.require_session(self.caller, what))

    @property
    def from_browser(self) -> bool:
        """A browser sent this: it always adds ``Origin`` to a write (POST, PUT, PATCH,
        DELETE) and no page script can remove it; the CLI and scripts send none."""
        return "Origin" in self.request.headers

    def require_destination_change(self, what: str) -> None:
        """Where a value may go changes from a browser only if the deployment allows it
        (``destinations_from_browsers``): a page also runs JavaScript from kernel outputs."""
        if self.runtime.settings.destinations_from_browsers or not self.from_browser:
            return
        raise http_error(
            403, f"On this server {what} is done with the jupyter secrets CLI, not from a "
            "browser (destinations_from_browsers is off: a page also runs code from kernel "
            "outputs). For example: jupyter secrets edit NAME --allowed-host HOST, or "
            "jupyter secrets connection create ...; adding, replacing and deleting values "
            "and narrowing hosts work here.")

    # -- audit -----------------------------------------------------------------------------

    async def audit(self, action: str, **fields: Any) -> None:
        """Record an event as this caller (and kernel): written before the response ends."""
        audit_log = self.runtime.audit
        await audit_log.commit(audit_log.event(action, user=self.caller.name,
                                               kernel_id=self.caller.kernel_id, **fields))

    # -- JSON in and out -------------------------------------------------------------------

    def read_json(
        self, *, allowed: set[str], required: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """Parse a JSON object body, refusing oversized bodies and unknown fields."""
        limit = self.runtime.settings.max_request_bytes
        if len(self.request.body) > limit:
            raise web.HTTPError(413, f"The request body exceeds the {limit}-byte limit.")
        try:
            body = json.loads(self.request.body or b"null")
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise web.HTTPError(400, "The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "The request body must be a JSON object.")
        problem = json_problem(body)
        if problem:
            raise http_error(422, problem)
        unknown = set(body) - allowed
        if unknown:
            raise http_error(
                422, f"Unknown field(s): {', '.join(sorted(unknown))}. "
                f"Allowed: {', '.join(sorted(allowed))}."
            )
        missing = required - set(body)
        if missing:
            raise http_error(422, f"Missing field(s): {', '.join(sorted(missing))}.")
        return body

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking service call off the event loop, mapping service errors to HTTP."""
        try:
            return await IOLoop.current().run_in_executor(
                None, functools.partial(fn, *args, **kwargs)
            )
        except SecretsError as error:
            raise self.http_error_for(error) from None

    def http_error_for(self, error: SecretsError) -> web.HTTPError:
        """The HTTP error for a service error (a 429 also says when to come back)."""
        http = http_error(status_for(error), str(error))
        if isinstance(error, RateLimited):
            http.retry_after = error.retry_after  # type: ignore[attr-defined]
        return http

    def write_json(self, payload: object, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(payload))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """JSON errors with an actionable message: never a traceback, never a value."""
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        error = kwargs.get("exc_info", (None, None, None))[1]
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            self.set_header("Retry-After", str(retry_after))
        if isinstance(error, web.HTTPError) and error.log_message:
            message = error.log_message % error.args
        elif status_code >= 500:
            message = "Internal error in jupyter-secrets; see the server log."
        else:
            message = self._reason
        runtime: SecretsRuntime | None = self.settings.get(RUNTIME_KEY)
        if runtime is not None:  # defence in depth: our messages never quote values anyway
            message = runtime.values.scrub_text(message)
        self.finish(json.dumps({"message": message, "status": status_code}))


Route = tuple[str, type[SecretsHandler]]
