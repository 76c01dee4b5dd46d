"""Give every kernel the server starts a token in its environment; revoke it at shutdown.

Who mints the token depends on the deployment: the server's own runtime (embedded), or the
secrets service at the request of this server (client mode, see ``server/client_mode.py``).
Either way the kernel gets ``JUPYTER_SECRETS_URL`` and ``JUPYTER_SECRETS_TOKEN`` and never
the server's own settings (master key, store URL, service credential).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from jupyter_server.base.call_context import CallContext

from ..protocol import (
    ADMIN_TOKEN_ENV,
    SERVER_ONLY_ENV,
    SERVICE_TOKEN_ENV,
    TOKEN_ENV,
    URL_ENV,
)
from ..runtime import SecretsRuntime
from ..services.access import RolePolicy
from ..services.connections import kernel_env

#: Never passed on to kernels: what lets this server (not its kernels) act.
PRIVATE_ENV = (*SERVER_ONLY_ENV, SERVICE_TOKEN_ENV, ADMIN_TOKEN_ENV)


class KernelTokens(Protocol):
    """Where kernel tokens come from, with the provider variables connections export."""

    api_url: str

    async def mint(self, username: str, kernel_id: str) -> tuple[str, dict[str, str]]: ...

    async def revoke(self, kernel_id: str) -> None: ...


class LocalKernelTokens:
    """Embedded: this server's runtime mints them (and heartbeats them in ``maintain``)."""

    def __init__(self, runtime: SecretsRuntime, api_url: str, policy: RolePolicy) -> None:
        self.runtime = runtime
        self.api_url = api_url
        self.policy = policy

    async def mint(self, username: str, kernel_id: str) -> tuple[str, dict[str, str]]:
        def mint() -> tuple[str, dict[str, str]]:
            token = self.runtime.tokens.mint_kernel(username, kernel_id,
                                                    server_id=self.runtime.id)
            caller = self.policy.caller(username, channel="kernel", kernel_id=kernel_id)
            env = kernel_env(self.runtime.connections.list(), caller,
                             f"{self.api_url}/proxy", token)
            return token, env

        return await asyncio.get_running_loop().run_in_executor(None, mint)

    async def revoke(self, kernel_id: str) -> None:
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: self.runtime.tokens.revoke_kernel(kernel_id))


def install_kernel_hooks(
    kernel_manager: Any,
    tokens: KernelTokens,
    *,
    username_of: Callable[[Any], str],
    server_user: str,
) -> None:
    """Wrap the kernel manager's start and shutdown.

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
        token, provider_env = await tokens.mint(username, kernel_id)
        env = dict(kwargs.get("env") or os.environ)
        for name in PRIVATE_ENV:
            env.pop(name, None)
        env.update(provider_env)  # e.g. OPENAI_BASE_URL + OPENAI_API_KEY = proxy + token
        env.update({URL_ENV: tokens.api_url, TOKEN_ENV: token})
        kwargs.update(env=env, kernel_id=kernel_id)
        try:
            return await start_kernel(*args, **kwargs)
        except BaseException:
            await tokens.revoke(kernel_id)
            raise

    async def shutdown_and_revoke(kernel_id: str, *args: Any, **kwargs: Any) -> None:
        await tokens.revoke(kernel_id)
        await shutdown_kernel(kernel_id, *args, **kwargs)

    kernel_manager.start_kernel = start_with_token
    kernel_manager.shutdown_kernel = shutdown_and_revoke
