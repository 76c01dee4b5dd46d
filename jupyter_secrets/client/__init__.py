"""The kernel client: use secrets by name; the server makes the calls."""

from ._http import NotConfigured, SecretsClientError, configure
from .api import (
    Connection,
    arequest,
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
