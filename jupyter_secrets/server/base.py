"""What every secrets API handler shares: auth, roles, JSON in and out, error mapping."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

from jupyter_server.base.handlers import APIHandler
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
    SecretsError,
    TooLarge,
    UpstreamFailed,
    UpstreamTimeout,
)
from ..roles import Role, RolePolicy
from ..service import SecretsService
from .kernel_tokens import KernelGrant

AUTH_RESOURCE = "secrets"
T = TypeVar("T")

_STATUS = {
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
}


def http_error(status: int, message: str) -> web.HTTPError:
    """An HTTPError whose message survives tornado's %-formatting of log messages."""
    return web.HTTPError(status, message.replace("%", "%%"))


def status_for(error: SecretsError) -> int:
    for cls in type(error).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 400


class SecretsAPIHandler(APIHandler):
    auth_resource = AUTH_RESOURCE
    kernel_grant: KernelGrant | None = None  # set when a kernel token signed the request in

    @property
    def identity_provider(self) -> Any:
        """The server's provider, plus kernel tokens (see ``identity.py``)."""
        return self.settings.get("secrets_identity") or super().identity_provider

    async def prepare(self) -> None:
        await super().prepare()
        unavailable = self.settings.get("secrets_unavailable")
        if unavailable and self.current_user:  # anonymous callers get the usual 403
            raise http_error(503, f"jupyter-secrets is unavailable: {unavailable}")

    @property
    def service(self) -> SecretsService:
        return self.settings["secrets_service"]

    @property
    def roles(self) -> RolePolicy:
        return self.settings["secrets_roles"]

    @property
    def username(self) -> str:
        return self.roles.actor(self.current_user.username)

    @property
    def role(self) -> Role:
        return self.roles.role_of(self.current_user.username)

    def require_admin(self) -> None:
        if self.role != "admin":
            raise web.HTTPError(403, "Only secrets admins can change secrets.")

    def require_session(self, what: str) -> None:
        """Egress policy (where values may go) is changed by people, not by kernel code.

        Otherwise code in a kernel (a package, an AI agent) could add its own host to a
        secret's allowlist, or point a connection at it, and then send the value there.
        """
        if self.kernel_grant is not None:
            raise http_error(
                403, f"Kernels cannot {what}: that is done by a person, with the jupyter "
                "secrets CLI in a terminal (e.g. jupyter secrets edit NAME --allowed-host "
                "HOST) or the REST API with your Jupyter login."
            )

    def audit(self, action: str, **fields: Any) -> None:
        """Note an audit event as this caller (and kernel); written later, off the request."""
        audit_log = self.settings.get("secrets_audit")
        if audit_log is not None:
            grant = self.kernel_grant
            audit_log.record(action, user=self.username,
                             kernel_id=grant.kernel_id if grant else None, **fields)

    def require_reader(self) -> None:
        if self.role != "admin" and not self.roles.users_can_list:
            raise web.HTTPError(403, "Only secrets admins can see secrets on this server.")

    def read_json(
        self, *, allowed: set[str], required: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """Parse a JSON object body, refusing oversized bodies and unknown fields."""
        limit = self.settings.get("secrets_max_request_bytes", 2 * 1024 * 1024)
        if len(self.request.body) > limit:
            raise web.HTTPError(413, f"The request body exceeds the {limit}-byte limit.")
        try:
            body = json.loads(self.request.body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise web.HTTPError(400, "The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "The request body must be a JSON object.")
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
            raise http_error(status_for(error), str(error)) from None

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
        if isinstance(error, web.HTTPError) and error.log_message:
            message = error.log_message % error.args
        elif status_code >= 500:
            message = "Internal error in jupyter-secrets; see the server log."
        else:
            message = self._reason
        index = self.settings.get("secrets_value_index")
        if index is not None:  # defence in depth: our messages never quote values anyway
            message = index.scrub_text(message)
        self.finish(json.dumps({"message": message, "status": status_code}))

