"""Who is calling the secrets service: the admin token, or a token the service issued.

``Authorization: token <JUPYTER_SECRETS_ADMIN_TOKEN>`` is the admin (a person's session:
the CLI with ``--service-url``, or the panel in a browser). Tokens the service minted carry
their kind in a prefix: a user's Jupyter server (``jss_``), a kernel (``jsk_``), a headless
run (``jsr_``); each acts as the user it was minted for and through its own channel, so
none of them can manage secrets. The JupyterHub login is added by ``service/hub.py``.
"""

from __future__ import annotations

import hmac
from typing import Any

from ..api.base import Action, SecretsHandler
from ..services.access import Caller, Channel, RolePolicy
from ..services.tokens import TokenService, token_from_headers

_CHANNELS: dict[str, Channel] = {"kernel": "kernel", "server": "server", "run": "run"}


def bearer(handler: Any) -> str | None:
    """The credential in ``Authorization: token|Bearer X`` (or an SDK's ``x-api-key``)."""
    issued = token_from_headers(handler.request.headers)
    if issued is not None:
        return issued
    scheme, _, value = handler.request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() in ("token", "bearer") and value.strip() else None


class ServiceIdentity:
    def __init__(
        self, policy: RolePolicy, tokens: TokenService, *, admin_token: str | None,
        admin_name: str = "admin",
    ) -> None:
        self.policy = policy
        self.tokens = tokens
        self._admin_token = admin_token.encode() if admin_token else None
        self.admin_name = admin_name

    def __repr__(self) -> str:
        return f"ServiceIdentity(admin_token={'set' if self._admin_token else 'unset'})"

    def is_admin_token(self, credential: str) -> bool:
        return self._admin_token is not None and hmac.compare_digest(
            credential.encode("utf-8", "surrogatepass"), self._admin_token)

    async def caller(self, handler: SecretsHandler) -> Caller | None:
        credential = bearer(handler)
        if credential is None:
            return None
        if self.is_admin_token(credential):
            return Caller(self.admin_name, "admin", "session")
        record = self.tokens.resolve(credential)
        if record is None:
            handler.token_problem = self.tokens.why_refused(credential)  # type: ignore[attr-defined]
            return None
        return self.policy.caller(record.username, channel=_CHANNELS[record.kind],
                                  kernel_id=record.kernel_id,
                                  groups=await self.extra_groups(record.username))

    async def extra_groups(self, username: str) -> frozenset[str]:
        """Groups known beyond the configuration (the Hub's, in ``service/hub.py``)."""
        return frozenset()

    def allows(self, handler: SecretsHandler, caller: Caller, action: Action) -> bool:
        return True
