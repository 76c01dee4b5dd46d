"""The panel's kernel-side reader: a small synchronous client for the secrets REST API.

Read-only by design: the kernel side of the panel only displays. Every write (values,
hosts, placements, connections, deletes) is made by the browser with the page's own login,
and the server refuses writes made with a kernel token anyway. So this client has no method
that could carry a value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from ..errors import SecretsError
from ..protocol import API_PATH as API_ROOT
from ..protocol import TOKEN_ENV, URL_ENV


class APIError(SecretsError):
    """The server refused a request; ``str()`` is the server's own message, for a person."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def api_root(url: str) -> str:
    """Accept a server URL or the API root itself; return the API root with a trailing slash."""
    url = url.rstrip("/")
    return f"{url}/" if url.endswith(API_ROOT) else f"{url}/{API_ROOT}/"


class SecretsAPI:
    """``me``, ``list`` and ``get`` against ``/api/secrets/v1`` (names and metadata only)."""

    def __init__(self, url: str, headers: Mapping[str, str] | None = None,
                 timeout: float = 30.0) -> None:
        self.url = api_root(url)
        self._client = httpx.Client(base_url=self.url, headers=dict(headers or {}),
                                    timeout=timeout, follow_redirects=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SecretsAPI:
        """The client a kernel started by the server gets: its URL and kernel token."""
        env = os.environ if environ is None else environ
        url, token = env.get(URL_ENV), env.get(TOKEN_ENV)
        if not url or not token:
            raise SecretsError(
                f"{URL_ENV} and {TOKEN_ENV} are not set: start this kernel from a Jupyter server "
                "with jupyter-secrets enabled, or pass api=SecretsAPI(url, headers=...)."
            )
        return cls(url, {"Authorization": f"Bearer {token}"})

    def __repr__(self) -> str:
        return f"SecretsAPI({self.url!r})"

    def close(self) -> None:
        self._client.close()

    def _get(self, path: str, **params: str) -> Any:
        try:
            response = self._client.get(path, params=params or None)
        except httpx.HTTPError as error:
            raise APIError(0, f"Could not reach the secrets API at {self.url}: "
                              f"{type(error).__name__}.") from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.is_error:
            message = payload.get("message") if isinstance(payload, dict) else None
            raise APIError(response.status_code,
                           message or f"The server answered {response.status_code}.")
        return payload

    def me(self) -> dict[str, Any]:
        return dict(self._get("me"))

    def list(self, owner: str = "all", kind: str = "user") -> list[dict[str, Any]]:
        return list(self._get("secrets", owner=owner, kind=kind)["secrets"])

    def get(self, name: str) -> dict[str, Any]:
        return dict(self._get(f"secrets/{quote(name, safe='')}"))
