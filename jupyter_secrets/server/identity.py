"""Who is calling, inside a Jupyter server: its login, or a kernel token on our API only.

Our handlers see the server's identity provider through :class:`KernelAwareIdentity`: a
request carrying a kernel token (``jsk_...``) is the user who started that kernel; any other
request goes to the server's provider unchanged. Jupyter's own handlers never use the
adapter, so a kernel token opens nothing outside ``/api/secrets/v1``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jupyter_server.auth.identity import User
from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..api.base import Action, SecretsHandler
from ..services.access import Caller, RolePolicy
from ..services.tokens import KernelGrant, TokenService, token_from_headers

AUTH_RESOURCE = "secrets"
KERNEL_IDENTITY_KEY = "jupyter_secrets_kernel_identity"


class KernelAwareIdentity:
    def __init__(
        self, inner: Any, tokens: TokenService, is_live: Callable[[str], bool]
    ) -> None:
        self._inner = inner
        self._tokens = tokens
        self._is_live = is_live

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def get_user(self, handler: web.RequestHandler) -> Any:
        token = token_from_headers(handler.request.headers)
        if token is None:
            return self._inner.get_user(handler)
        record = self._tokens.resolve(token, kinds=("kernel", "run"))
        if record is not None and record.kind == "run":  # a headless run (papermill, jobs)
            handler._token_authenticated = True  # type: ignore[attr-defined]
            handler.run_token = record  # type: ignore[attr-defined]
            return User(username=record.username)
        if record is None or record.kernel_id is None or not self._is_live(record.kernel_id):
            # A dead, revoked, expired or forged token: unauthenticated, and told why.
            handler.token_problem = self._tokens.why_refused(token) or (  # type: ignore[attr-defined]
                "This kernel token is no longer valid: restart the kernel.")
            return None
        grant = KernelGrant(record.username, record.kernel_id)
        handler._token_authenticated = True  # type: ignore[attr-defined] # no XSRF for scripts
        handler.kernel_grant = grant  # type: ignore[attr-defined]
        return User(username=grant.username)


class JupyterIdentity:
    """The extension's :class:`~jupyter_secrets.api.base.Identity`: Jupyter's login + roles."""

    def __init__(self, policy: RolePolicy) -> None:
        self.policy = policy

    async def caller(self, handler: SecretsHandler) -> Caller | None:
        user = handler.current_user
        if user is None:
            return None
        grant: KernelGrant | None = getattr(handler, "kernel_grant", None)
        if grant is not None:
            return self.policy.caller(user.username, channel="kernel", kernel_id=grant.kernel_id)
        if getattr(handler, "run_token", None) is not None:
            return self.policy.caller(user.username, channel="run")
        return self.policy.caller(user.username)

    def allows(self, handler: SecretsHandler, caller: Caller, action: Action) -> bool:
        """A deployment's own ``Authorizer`` may veto any action, even for an admin."""
        authorizer = handler.settings["authorizer"]
        return bool(authorizer.is_authorized(handler, handler.current_user, action,
                                             AUTH_RESOURCE))


class JupyterAPIHandler(APIHandler):
    """The tornado base our API handlers are bound to inside a Jupyter server."""

    kernel_grant: KernelGrant | None = None  # set when a kernel token signed the request in

    def finish(self, chunk: Any = None) -> Any:
        """``APIHandler.finish`` labels every answer ``application/json``; an upstream's
        answer relayed whole (``EgressHandler.relays_upstream``) keeps its own label."""
        if not getattr(self, "relays_upstream", False):
            return super().finish(chunk)
        self.update_api_activity()
        return web.RequestHandler.finish(self, chunk)

    @property
    def identity_provider(self) -> Any:
        """The server's provider, plus kernel tokens."""
        return self.settings.get(KERNEL_IDENTITY_KEY) or super().identity_provider
