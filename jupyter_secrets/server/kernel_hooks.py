"""Give every kernel the server starts a token in its environment; revoke it at shutdown."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

from jupyter_server.base.call_context import CallContext

from ..protocol import SERVER_ONLY_ENV, TOKEN_ENV, URL_ENV
from ..services.tokens import KernelTokenRegistry


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
