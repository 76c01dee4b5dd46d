"""jupyter-secrets: notebook code uses workspace API keys by name, never by value.

In a notebook::

    import jupyter_secrets as js
    js.names()
    js.connection("github").get("/user")
    OpenAI(**js.connection("openai").sdk_kwargs())
"""

from __future__ import annotations

from typing import Any

from ._version import __version__
from .client import (
    Connection,
    NotConfigured,
    SecretsClientError,
    arequest,
    configure,
    connection,
    connections,
    env,
    get,
    names,
    request,
    secrets,
)

__all__ = [
    "Connection",
    "NotConfigured",
    "SecretsClientError",
    "SecretsPanel",
    "__version__",
    "arequest",
    "configure",
    "connection",
    "connections",
    "env",
    "get",
    "names",
    "request",
    "secrets",
]


def __getattr__(name: str) -> Any:
    if name == "SecretsPanel":  # imports ipywidgets only when asked for
        from .widgets import SecretsPanel

        return SecretsPanel
    raise AttributeError(f"module 'jupyter_secrets' has no attribute {name!r}")


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .server.app import SecretsExtensionApp

    return [{"module": "jupyter_secrets.server.app", "app": SecretsExtensionApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyter-secrets"}]
