"""Client mode: this Jupyter server uses a secrets service and holds no store, key or value.

Its only credential for the service is a server token, which can mint kernel tokens for this
server's user and ask for redactions, and nothing else: no secret, connection or allowed
host can be changed with anything that exists in this server or its kernels. Kernels call
the service directly (``JUPYTER_SECRETS_URL`` points there); browsers too, for the panel.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from typing import Any

import httpx

from ..protocol import API_PATH, LOGGER_NAME
from .kernel_hooks import KernelTokens

log = logging.getLogger(LOGGER_NAME)
HEARTBEAT_S = 30.0
TIMEOUT = httpx.Timeout(10.0)


def service_api_url(service_url: str) -> str:
    return service_url.rstrip("/") + "/" + API_PATH


class ServiceClient(KernelTokens):
    """This server's calls to the service, with its server token."""

    def __init__(self, service_url: str, server_token: str) -> None:
        self.api_url = service_api_url(service_url)
        headers = {"Authorization": f"token {server_token}"}
        self._async = httpx.AsyncClient(base_url=self.api_url + "/", headers=headers,
                                        timeout=TIMEOUT, trust_env=False)
        self._sync = httpx.Client(base_url=self.api_url + "/", headers=headers,
                                  timeout=TIMEOUT, trust_env=False)

    def __repr__(self) -> str:  # the server token is a credential
        return f"ServiceClient({self.api_url!r})"

    @staticmethod
    def _check(response: httpx.Response, what: str) -> Any:
        if response.is_error:
            try:
                message = response.json().get("message")
            except ValueError:
                message = None
            raise RuntimeError(f"The secrets service refused to {what}: "
                               f"{message or response.status_code}")
        return response.json() if response.content else None

    async def mint(self, username: str, kernel_id: str) -> tuple[str, dict[str, str]]:
        """The service binds the token to the user its server token was made for, and says
        which provider variables the kernel gets (URLs as this server reaches the service)."""
        response = await self._async.post(
            "kernel-tokens", json={"kernel_id": kernel_id, "api_url": self.api_url})
        body = self._check(response, "mint a kernel token")
        return str(body["token"]), {str(k): str(v) for k, v in (body.get("env") or {}).items()}

    async def revoke(self, kernel_id: str) -> None:
        try:
            self._check(await self._async.delete(f"kernel-tokens/{kernel_id}"),
                        "revoke a kernel token")
        except (httpx.HTTPError, RuntimeError):  # it expires without heartbeats anyway
            log.warning("jupyter-secrets: could not revoke the token of kernel %s now; it "
                        "expires within 90 s", kernel_id, exc_info=True)

    async def heartbeat(self, kernel_ids: list[str]) -> None:
        self._check(await self._async.post("kernel-tokens/heartbeat",
                                           json={"kernel_ids": kernel_ids}), "renew tokens")

    async def keep_alive(self, live_kernels: Any) -> None:
        """Every 30 s: tell the service which kernels still run (their tokens live on)."""
        while True:
            try:
                await self.heartbeat(list(live_kernels()))
            except (httpx.HTTPError, RuntimeError):
                log.warning("jupyter-secrets: heartbeat to the secrets service failed",
                            exc_info=True)
            await asyncio.sleep(HEARTBEAT_S)

    def redact(self, payload: dict[str, Any]) -> tuple[Any, list[str]]:
        """Synchronous: the contents manager's pre-save hooks and log filters are."""
        response = self._sync.post("redact", json=payload)
        body = self._check(response, "redact")
        key = "notebook" if "notebook" in payload else "text"
        return body[key], list(body["names"])

    async def aclose(self) -> None:
        await self._async.aclose()
        self._sync.close()


def redact_hook(client: ServiceClient) -> Any:
    """Pre-save hook: stored values in notebooks and text files replaced, by the service."""

    def redact_before_save(model: dict[str, Any], path: str, **_: Any) -> None:
        content = model.get("content")
        try:
            if model.get("type") == "notebook" and isinstance(content, dict):
                model["content"], names = client.redact({"notebook": content})
            elif model.get("format") == "text" and isinstance(content, str):
                model["content"], names = client.redact({"text": content})
            else:
                return
        except (httpx.HTTPError, RuntimeError) as error:
            log.warning("jupyter-secrets: %s was saved without the redaction check: %s",
                        path, error)
            return
        if names:
            log.warning("jupyter-secrets: redacted %s from %s before saving",
                        ", ".join(names), path)

    return redact_before_save


class ServiceScrubbingFilter(logging.Filter):
    """Error lines and tracebacks checked by the service before any handler writes them.

    Values never pass through a server in client mode; this catches what a person pasted
    into something that then failed. Routine lines (access logs) are not sent.
    """

    def __init__(self, client: ServiceClient) -> None:
        super().__init__("jupyter_secrets")
        self.client = client
        self._busy = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or getattr(self._busy, "on", False):
            return True
        self._busy.on = True
        # The service unreachable or rate-limiting: the line is kept as it is.
        with contextlib.suppress(Exception):
            message = record.getMessage()
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            text = json.dumps([message, record.exc_text or ""])
            scrubbed, names = self.client.redact({"text": text})
            if names:
                message, record.exc_text = json.loads(scrubbed)
                record.msg, record.args = message, ()
        self._busy.on = False
        return True
