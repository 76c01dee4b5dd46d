"""Kernel tokens minted at the request of a user's Jupyter server (client mode), and the
text a server asks to have redacted (saves, error logs) without holding any value itself."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..errors import InvalidInput
from ..services.connections import kernel_env
from ..services.tokens import digest_of, parse_ttl, token_from_headers
from ..validation import validate_http_url
from .base import Route, SecretsHandler, http_error

MAX_KERNEL_IDS = 1000


class ServerCredentialHandler(SecretsHandler):
    """Routes only a user's Jupyter server calls, with its server token."""

    def server_id(self) -> str:
        self._check(lambda: self.access.require_channel(self.caller, "server",
                                                        "mint or renew kernel tokens"))
        token = token_from_headers(self.request.headers)
        if token is None:  # a Hub API token
            token = self.request.headers.get("Authorization", "").partition(" ")[2].strip()
        if not token:  # e.g. a Hub token in the URL: which server it is stays unknown
            raise http_error(401, "Send your server's token in the Authorization header.")
        return digest_of(token)


class KernelTokensHandler(ServerCredentialHandler):
    async def post(self) -> None:
        """A kernel is starting: mint its token, for this server's user."""
        server_id = self.server_id()
        body = self.read_json(allowed={"kernel_id", "api_url"},
                              required=frozenset({"kernel_id"}))
        kernel_id = body["kernel_id"]
        if not isinstance(kernel_id, str) or not 0 < len(kernel_id) <= 128:
            raise http_error(422, "kernel_id must be a string of 1 to 128 characters.")
        try:  # how this server's kernels reach the service, for the provider variables
            api_url = validate_http_url(body.get("api_url") or self.full_api_url(), "api_url")
        except InvalidInput as error:
            raise http_error(422, str(error)) from None
        token = await self.call(self.runtime.tokens.mint_kernel, self.caller.name, kernel_id,
                                server_id=server_id)
        kernel = replace(self.caller, channel="kernel", kernel_id=kernel_id)
        env = kernel_env(await self.call(self.runtime.connections.list), kernel,
                         f"{api_url.rstrip('/')}/proxy", token)
        self.write_json({"token": token, "username": self.caller.name, "env": env},
                        status=201)


class KernelTokenHandler(ServerCredentialHandler):
    async def delete(self, kernel_id: str) -> None:
        """The kernel shut down: its token dies with it (only this server's own)."""
        server_id = self.server_id()
        await self.call(self.runtime.tokens.revoke_kernel, kernel_id, server_id=server_id)
        self.set_status(204)
        self.finish()


class HeartbeatHandler(ServerCredentialHandler):
    async def post(self) -> None:
        """The server's kernels that still run; tokens of the others expire on their own."""
        server_id = self.server_id()
        body = self.read_json(allowed={"kernel_ids"}, required=frozenset({"kernel_ids"}))
        ids = body["kernel_ids"]
        if not isinstance(ids, list) or len(ids) > MAX_KERNEL_IDS or not all(
            isinstance(i, str) for i in ids
        ):
            raise http_error(422, f"kernel_ids must be a list of at most {MAX_KERNEL_IDS} "
                             "kernel ids.")
        extended = await self.call(self.runtime.tokens.heartbeat, server_id, ids)
        self.write_json({"extended": extended})


class RedactHandler(SecretsHandler):
    """``POST /redact``: stored values in a text or a notebook replaced by ``[REDACTED:NAME]``.

    For a user's server in client mode, which holds no value. A redaction confirms a guess,
    so it is rate-limited per user and values shorter than the minimum are never matched.
    """

    async def post(self) -> None:
        self._check(lambda: self.access.require_channel(self.caller, "server",
                                                        "ask for redactions"))
        body = self.read_json(allowed={"text", "notebook"})
        if ("text" in body) == ("notebook" in body) or not isinstance(
            body.get("text", body.get("notebook")), str | dict
        ):
            raise http_error(422, "Send either text (a string) or notebook (an object).")
        await self.call(self.runtime.limits.redaction, self.caller.name)
        redacted, names = await self.call(self._redact, body)
        self.write_json({**redacted, "names": names})

    def _redact(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        values = self.runtime.values
        model: dict[str, Any] = (
            {"type": "notebook", "content": body["notebook"]} if "notebook" in body
            else {"type": "file", "format": "text", "content": body["text"]}
        )
        redaction = values.scrub_model(model)
        key = "notebook" if "notebook" in body else "text"
        return {key: model["content"]}, redaction.names


class RunTokensHandler(SecretsHandler):
    """``/tokens``: use-only tokens for headless runs (papermill, jobs), bound to a user."""

    async def get(self) -> None:
        self.require_admin("list run tokens")
        records = await self.call(self.runtime.tokens.list, kind="run")
        self.write_json({"tokens": [r.to_json() for r in records]})

    async def post(self) -> None:
        self.require_admin("create run tokens")
        body = self.read_json(allowed={"name", "ttl", "user"},
                              required=frozenset({"name", "ttl"}))
        name, user = body["name"], body.get("user", self.caller.name)
        if not isinstance(name, str) or not 0 < len(name.strip()) <= 64:
            raise http_error(422, "name must be a label of 1 to 64 characters, like nightly.")
        if not isinstance(user, str) or not 0 < len(user) <= 256:
            raise http_error(422, "user must be a user name.")
        try:
            ttl = parse_ttl(str(body["ttl"]))
        except InvalidInput as error:
            raise http_error(422, str(error)) from None
        token, record = await self.call(self.runtime.tokens.mint, "run", user,
                                        name=name.strip(), ttl=ttl)
        await self.audit("token_create", reason=f"run token {record.name} for {user}")
        self.write_json({**record.to_json(), "token": token}, status=201)


class RunTokenHandler(SecretsHandler):
    async def delete(self, token_id: str) -> None:
        self.require_admin("revoke run tokens")
        record = await self.call(self.runtime.tokens.revoke, token_id)
        await self.audit("token_revoke", reason=f"{record.kind} token {record.name or ''} "
                         f"of {record.username}")
        self.set_status(204)
        self.finish()


routes: list[Route] = [
    ("tokens", RunTokensHandler),
    ("tokens/(?P<token_id>[^/]+)", RunTokenHandler),
    ("kernel-tokens", KernelTokensHandler),
    ("kernel-tokens/heartbeat", HeartbeatHandler),
    ("kernel-tokens/(?P<kernel_id>[^/]+)", KernelTokenHandler),
    ("redact", RedactHandler),
]
