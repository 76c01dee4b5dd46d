"""What notebook code calls: names, connections, ad-hoc requests. Never a value."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx

from ._http import async_client, endpoint, is_server_error, server_error, sync_client


def _call(method: str, path: str, *, proxied: bool = False, **kwargs: Any) -> httpx.Response:
    ep = endpoint()
    headers = {**kwargs.pop("headers", None or {}), **ep.headers}
    response = sync_client().request(method, f"{ep.url}/{path}", headers=headers, **kwargs)
    if is_server_error(response, proxied=proxied):
        raise server_error(response)
    return response


async def _acall(method: str, path: str, *, proxied: bool = False, **kwargs: Any) -> httpx.Response:
    ep = endpoint()
    headers = {**kwargs.pop("headers", None or {}), **ep.headers}
    async with async_client() as client:
        response = await client.request(method, f"{ep.url}/{path}", headers=headers, **kwargs)
    if is_server_error(response, proxied=proxied):
        raise server_error(response)
    return response


def secrets() -> list[dict[str, Any]]:
    """Metadata of the secrets you may see: name, description, allowed hosts, versions..."""
    return list(_call("GET", "secrets").json()["secrets"])


def names() -> list[str]:
    """The names of the secrets you can use (by name, in connections and placeholders)."""
    return [s["name"] for s in secrets()]


def env() -> dict[str, str]:
    """Provider variables a kernel started now gets (name -> connection), never their values.

    Connections that export their environment (``OPENAI_BASE_URL`` + ``OPENAI_API_KEY`` and
    the like) point SDKs at the proxy with the kernel's own token, so ``OpenAI()`` with no
    arguments works. Kernels get them when they start: restart the kernel after a change.
    """
    variables = _call("GET", "env").json()["variables"]
    return {v["name"]: v["connection"] for v in variables}


def connections() -> list[str]:
    """The names of the connections you can call."""
    return [c["name"] for c in _call("GET", "connections").json()["connections"]]


def get(name: str) -> Any:
    """There is deliberately no way to read a value: raise an error that says what to do."""
    raise PermissionError(
        f"jupyter-secrets never gives a secret's value to notebook code, so {name!r} cannot be "
        "read. Use it by name instead: js.connection('<connection>').get(...) for a configured "
        "service, OpenAI(**js.connection('openai').sdk_kwargs()) for an SDK, or "
        "js.request('GET', url, headers={'Authorization': 'Bearer {{secrets.%s}}'})." % name
    )


def _request_body(
    method: str, url: str, headers: dict[str, str] | None, params: dict[str, Any] | None,
    content: str | bytes | None, json: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"method": method, "url": url, "headers": headers or {},
                            "params": params or {}}
    if isinstance(content, bytes):
        import base64

        body["body_base64"] = base64.b64encode(content).decode()
    elif content is not None:
        body["body"] = content
    if json is not None:
        body["json"] = json
    return body


def request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    content: str | bytes | None = None,
    json: Any = None,
) -> httpx.Response:
    """One call made by the server, with ``{{secrets.NAME}}`` filled in where it may go.

    Placeholders work in the URL, header values, ``params`` and a text or JSON body. The
    response is the upstream's, with any echo of the values replaced by
    ``[REDACTED:NAME]``. Refusals raise ``SecretsClientError`` with the reason.
    """
    body = _request_body(method, url, headers, params, content, json)
    return _call("POST", "request", proxied=True, json=body)


async def arequest(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    content: str | bytes | None = None,
    json: Any = None,
) -> httpx.Response:
    """Async :func:`request`."""
    body = _request_body(method, url, headers, params, content, json)
    return await _acall("POST", "request", proxied=True, json=body)


class Connection:
    """A configured service, called through the server: ``connection("github").get("/user")``.

    Responses are ``httpx.Response`` objects from the upstream (scrubbed of secret values).
    The server's own refusals raise ``SecretsClientError``.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<jupyter_secrets.Connection {self.name!r}>"

    @property
    def base_url(self) -> str:
        """The proxy URL for this connection: point any SDK's ``base_url`` here."""
        return f"{endpoint().url}/proxy/{self.name}"

    def _path(self, path: str) -> str:
        return f"proxy/{self.name}/{path.lstrip('/')}"

    def sdk_kwargs(self) -> dict[str, str]:
        """``base_url`` and ``api_key`` for OpenAI/Anthropic-style SDKs.

        The ``api_key`` is this kernel's token, not the secret: the server swaps it for the
        real key on the way out, and it stops working when the kernel shuts down.
        """
        return {"base_url": self.base_url, "api_key": endpoint().token}

    def request(self, method: str, path: str = "", **kwargs: Any) -> httpx.Response:
        return _call(method, self._path(path), proxied=True, **kwargs)

    def get(self, path: str = "", **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str = "", **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str = "", **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str = "", **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str = "", **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    @contextmanager
    def stream(self, method: str, path: str = "", **kwargs: Any) -> Iterator[httpx.Response]:
        """Stream the response: ``for line in r.iter_lines()`` sees chunks as they arrive."""
        ep = endpoint()
        headers = {**kwargs.pop("headers", None or {}), **ep.headers}
        with sync_client().stream(method, f"{ep.url}/{self._path(path)}", headers=headers,
                                  **kwargs) as response:
            if is_server_error(response, proxied=True):
                response.read()
                raise server_error(response)
            yield response

    async def arequest(self, method: str, path: str = "", **kwargs: Any) -> httpx.Response:
        return await _acall(method, self._path(path), proxied=True, **kwargs)

    async def aget(self, path: str = "", **kwargs: Any) -> httpx.Response:
        return await self.arequest("GET", path, **kwargs)

    async def apost(self, path: str = "", **kwargs: Any) -> httpx.Response:
        return await self.arequest("POST", path, **kwargs)

    @asynccontextmanager
    async def astream(
        self, method: str, path: str = "", **kwargs: Any
    ) -> AsyncIterator[httpx.Response]:
        ep = endpoint()
        headers = {**kwargs.pop("headers", None or {}), **ep.headers}
        async with async_client() as client, client.stream(
            method, f"{ep.url}/{self._path(path)}", headers=headers, **kwargs
        ) as response:
            if is_server_error(response, proxied=True):
                await response.aread()
                raise server_error(response)
            yield response


def connection(name: str) -> Connection:
    """A connection by name. Checked on first use, so this works before the server answers."""
    return Connection(name)
