"""The REST API, served by the Jupyter server extension and by the secrets service alike.

Each module ends with its ``routes``; :func:`bind_routes` collects them under the API prefix
and mixes each handler with the app's own tornado base class.
"""

from __future__ import annotations

from tornado import web

from ..protocol import API_PREFIX
from . import connections, egress, info, scan, secrets, tokens, ui
from .base import IDENTITY_KEY, UNAVAILABLE_KEY, Identity, Route, SecretsHandler

__all__ = ["IDENTITY_KEY", "ROUTES", "UNAVAILABLE_KEY", "Identity", "SecretsHandler", "bind_routes"]

ROUTES: list[Route] = [
    *secrets.routes, *connections.routes, *egress.routes, *scan.routes, *tokens.routes,
    *info.routes, *ui.routes,
]


def bind_routes(
    base: type[web.RequestHandler], routes: list[Route] = ROUTES, prefix: str = API_PREFIX
) -> list[tuple[str, type[web.RequestHandler]]]:
    """``(url pattern, handler class)`` pairs, each handler mixed with the app's ``base``."""
    bound: list[tuple[str, type[web.RequestHandler]]] = []
    for path, handler in routes:
        cls = type(handler.__name__, (handler, base), {"__module__": handler.__module__})
        bound.append((f"{prefix}/{path}", cls))
    return bound
