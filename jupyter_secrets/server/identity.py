"""Let kernel tokens sign in to this extension's handlers, and nowhere else.

Our handlers see the server's identity provider through this adapter: a request carrying a
kernel token (``jsk_...``) is the user who started that kernel; any other request goes to
the server's provider unchanged. Jupyter's own handlers never use the adapter, so a kernel
token opens nothing outside ``/api/secrets/v1``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jupyter_server.auth.identity import User
from tornado import web

from .kernel_tokens import KernelTokenRegistry, token_from_headers


class KernelAwareIdentity:
    def __init__(
        self, inner: Any, registry: KernelTokenRegistry, is_live: Callable[[str], bool]
    ) -> None:
        self._inner = inner
        self._registry = registry
        self._is_live = is_live

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def get_user(self, handler: web.RequestHandler) -> Any:
        token = token_from_headers(handler.request.headers)
        if token is None:
            return self._inner.get_user(handler)
        grant = self._registry.resolve(token)
        if grant is not None and not self._is_live(grant.kernel_id):
            self._registry.revoke_kernel(grant.kernel_id)
            grant = None
        if grant is None:
            return None  # a dead or forged kernel token: unauthenticated, 403
        handler._token_authenticated = True  # type: ignore[attr-defined] # no XSRF for scripts
        handler.kernel_grant = grant  # type: ignore[attr-defined]
        return User(username=grant.username)
