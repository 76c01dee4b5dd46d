"""Kernel tokens: a capability minted for each kernel a server starts.

The token reaches the kernel in its environment (``JUPYTER_SECRETS_TOKEN``), identifies the
user who started the kernel, and works on this API only. The registry keeps only SHA-256
digests, compares them in constant time, and forgets a kernel's token when it shuts down.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from ..protocol import KERNEL_TOKEN_PREFIX as TOKEN_PREFIX


@dataclass(frozen=True)
class KernelGrant:
    username: str
    kernel_id: str

    def __repr__(self) -> str:
        return f"KernelGrant(username={self.username!r}, kernel_id={self.kernel_id!r})"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class KernelTokenRegistry:
    def __init__(self) -> None:
        self._grants: dict[bytes, KernelGrant] = {}

    def __repr__(self) -> str:
        return f"KernelTokenRegistry({len(self._grants)} live tokens)"

    def mint(self, username: str, kernel_id: str) -> str:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._grants[_digest(token)] = KernelGrant(username, kernel_id)
        return token

    def resolve(self, token: str) -> KernelGrant | None:
        """The grant for a live token. Dict lookup on the digest, then a constant-time check."""
        digest = _digest(token)
        for stored, grant in list(self._grants.items()):
            if hmac.compare_digest(stored, digest):
                return grant
        return None

    def revoke_kernel(self, kernel_id: str) -> int:
        dead = [d for d, g in self._grants.items() if g.kernel_id == kernel_id]
        for digest in dead:
            del self._grants[digest]
        return len(dead)


def token_from_headers(headers: Mapping[str, str]) -> str | None:
    """A kernel token from where SDKs put their key: ``Authorization`` or ``x-api-key``."""
    authorization = headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip().startswith(TOKEN_PREFIX):
        return value.strip()
    api_key = headers.get("x-api-key", "").strip()
    if api_key.startswith(TOKEN_PREFIX):
        return api_key
    return None
