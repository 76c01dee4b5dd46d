"""The panel's only way to the server: a small synchronous client for the secrets REST API.

It is an interface of its own so the panel can be built against any server it is pointed at
(tests pass an explicit URL and ``Authorization: token ...`` header; in a kernel the server's
environment supplies the URL and a kernel token). It never logs, stores or echoes a value:
values appear only in the fallback create/replace request bodies.
"""

from __future__ import annotations

import builtins
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
    """list / get / create / replace / patch / delete / me against ``/api/secrets/v1``."""

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

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise APIError(0, f"Could not reach the secrets API at {self.url}: "
                              f"{type(error).__name__}.") from None
        if response.status_code == 204:
            return None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.is_error:
            message = payload.get("message") if isinstance(payload, dict) else None
            raise APIError(response.status_code,
                           message or f"The server answered {response.status_code}.")
        return payload

    @staticmethod
    def _path(name: str) -> str:
        return f"secrets/{quote(name, safe='')}"

    def me(self) -> dict[str, Any]:
        return self._call("GET", "me")

    def list(self, owner: str = "all") -> list[dict[str, Any]]:
        return self._call("GET", "secrets", params={"owner": owner})["secrets"]

    def get(self, name: str) -> dict[str, Any]:
        return self._call("GET", self._path(name))

    def create(self, name: str, value: str, *, description: str | None = None,
               allowed_hosts: builtins.list[str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "value": value}
        if description is not None:
            body["description"] = description
        if allowed_hosts is not None:
            body["allowed_hosts"] = allowed_hosts
        return self._call("POST", "secrets", json=body)

    def replace(self, name: str, value: str) -> dict[str, Any]:
        return self._call("PUT", self._path(name), json={"value": value})

    def patch(self, name: str, **fields: Any) -> dict[str, Any]:
        return self._call("PATCH", self._path(name), json=fields)

    def delete(self, name: str, *, force: bool = False) -> None:
        self._call("DELETE", self._path(name), params={"force": "true"} if force else None)
