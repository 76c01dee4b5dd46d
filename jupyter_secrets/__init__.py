"""jupyter-secrets: notebook code uses workspace API keys by name, never by value."""

from __future__ import annotations

from typing import Any

from ._version import __version__

__all__ = ["__version__"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .server.app import SecretsExtensionApp

    return [{"module": "jupyter_secrets.server.app", "app": SecretsExtensionApp}]
