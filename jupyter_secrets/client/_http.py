"""How the kernel reaches the server: URL and kernel token, shared HTTP clients, errors."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import httpx

from ..protocol import ERROR_HEADER, TOKEN_ENV, URL_ENV

# Generous read timeout: streamed answers from slow models pause for minutes.
TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=60.0, pool=10.0)


class SecretsClientError(Exception):
    """The secrets server refused or failed a call; ``status`` is its HTTP status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotConfigured(SecretsClientError):
    """No server to talk to: not in a kernel started by a server with jupyter-secrets."""


@dataclass(frozen=True)
class Endpoint:
    url: str
    token: str

    def __repr__(self) -> str:  # the token is a capability: keep it out of outputs
        return f"Endpoint(url={self.url!r})"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


_explicit: Endpoint | None = None
_sync_client: httpx.Client | None = None


def configure(url: str, token: str) -> None:
    """Use an explicit server URL (``.../api/secrets/v1``) and kernel token (remote use)."""
    global _explicit
    _explicit = Endpoint(url.rstrip("/"), token)


def endpoint() -> Endpoint:
    if _explicit is not None:
        return _explicit
    url, token = os.environ.get(URL_ENV), os.environ.get(TOKEN_ENV)
    if not url or not token:
        raise NotConfigured(
            f"{URL_ENV} and {TOKEN_ENV} are not set: this kernel was not started by a Jupyter "
            "server running jupyter-secrets (or started before it was installed). Restart the "
            "kernel from Jupyter, or call jupyter_secrets.configure(url=..., token=...)."
        )
    return Endpoint(url.rstrip("/"), token)


def sync_client() -> httpx.Client:
    global _sync_client
    if _sync_client is None:
        _sync_client = httpx.Client(timeout=TIMEOUT, trust_env=False)
    return _sync_client


def async_client() -> httpx.AsyncClient:
    """A fresh client per call: notebooks run several event loops over a kernel's life."""
    return httpx.AsyncClient(timeout=TIMEOUT, trust_env=False)


def is_server_error(response: httpx.Response, *, proxied: bool) -> bool:
    """Our own refusals and failures, as opposed to an upstream's answer relayed as is."""
    if response.is_success:
        return False
    return ERROR_HEADER in response.headers or not proxied


def server_error(response: httpx.Response) -> SecretsClientError:
    """Build the error from a response whose body has been read."""
    try:
        body: Any = response.json()
        message = str(body.get("message") or response.reason_phrase)
    except ValueError:
        message = f"{response.status_code} {response.reason_phrase}"
    return SecretsClientError(message, response.status_code)
