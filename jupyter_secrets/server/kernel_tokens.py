"""Kernel tokens: a capability minted for each kernel the server starts.

The token reaches the kernel in its environment (``JUPYTER_SECRETS_TOKEN``), identifies the
user who started the kernel, and works on this extension's API only: jupyter_server's own
identity provider never sees it. The registry keeps only SHA-256 digests, compares them in
constant time, and forgets a kernel's token when the kernel shuts down.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jupyter_server.base.call_context import CallContext

TOKEN_PREFIX = "jsk_"  # noqa: S105 - a prefix, not a token
URL_ENV = "JUPYTER_SECRETS_URL"
TOKEN_ENV = "JUPYTER_SECRETS_TOKEN"  # noqa: S105 - an environment variable name
SERVER_ONLY_ENV = ("JUPYTER_SECRETS_KEY", "JUPYTER_SECRETS_KEY_FILE", "JUPYTER_SECRETS_STORE_URL")


@dataclass(frozen=True)
class KernelGrant:
    username: str
    kernel_id: str

    def __repr__(self) -> str:
        return f"KernelGrant(username={self.username!r}, kernel_id={self.kernel_id!r})"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class KernelTokenRegistry:
    def __init__(self) -> None:
        self._grants: dict[bytes, KernelGrant] = {}

    def __repr__(self) -> str:
        return f"KernelTokenRegistry({len(self._grants)} live tokens)"

    def mint(self, username: str, kernel_id: str) -> str:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._grants[_digest(token)] = KernelGrant(username, kernel_id)
        return token

    def resolve(self, token: str) -> KernelGrant | None:
        """The grant for a live token. Dict lookup on the digest, then a constant-time check."""
        digest = _digest(token)
        for stored, grant in list(self._grants.items()):
            if hmac.compare_digest(stored, digest):
                return grant
        return None

    def revoke_kernel(self, kernel_id: str) -> int:
        dead = [d for d, g in self._grants.items() if g.kernel_id == kernel_id]
        for digest in dead:
            del self._grants[digest]
        return len(dead)


def token_from_headers(headers: Mapping[str, str]) -> str | None:
    """A kernel token from where SDKs put their key: ``Authorization`` or ``x-api-key``."""
    authorization = headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip().startswith(TOKEN_PREFIX):
        return value.strip()
    api_key = headers.get("x-api-key", "").strip()
    if api_key.startswith(TOKEN_PREFIX):
        return api_key
    return None


def install_kernel_hooks(
    kernel_manager: Any,
    registry: KernelTokenRegistry,
    *,
    api_url: str,
    username_of: Callable[[Any], str],
    server_user: str,
) -> None:
    """Give every kernel the server starts a token in its environment; revoke it on shutdown.

    The user is the one whose request started the kernel (jupyter_server's CallContext holds
    the handler), falling back to the server's own user for kernels started without one.
    """
    start_kernel: Callable[..., Awaitable[str]] = kernel_manager.start_kernel
    shutdown_kernel: Callable[..., Awaitable[None]] = kernel_manager.shutdown_kernel

    async def start_with_token(*args: Any, **kwargs: Any) -> str:
        kernel_id = kwargs.get("kernel_id")
        if kernel_id is not None and kernel_id in kernel_manager:
            return await start_kernel(*args, **kwargs)
        handler = CallContext.get(CallContext.JUPYTER_HANDLER)
        user = getattr(handler, "current_user", None)
        username = username_of(user) if user else server_user
        kernel_id = kernel_id or kernel_manager.new_kernel_id()
        token = registry.mint(username, kernel_id)
        env = dict(kwargs.get("env") or os.environ)
        for name in SERVER_ONLY_ENV:  # the master key stays with the server
            env.pop(name, None)
        env.update({URL_ENV: api_url, TOKEN_ENV: token})
        kwargs.update(env=env, kernel_id=kernel_id)
        try:
            return await start_kernel(*args, **kwargs)
        except BaseException:
            registry.revoke_kernel(kernel_id)
            raise

    async def shutdown_and_revoke(kernel_id: str, *args: Any, **kwargs: Any) -> None:
        registry.revoke_kernel(kernel_id)
        await shutdown_kernel(kernel_id, *args, **kwargs)

    kernel_manager.start_kernel = start_with_token
    kernel_manager.shutdown_kernel = shutdown_and_revoke
