"""Issued credentials: kernel tokens, user-server tokens and run tokens, by digest.

A token is 32 random bytes after a prefix that says what it is (``jsk_`` kernel, ``jss_``
user server, ``jsr_`` run). Only its SHA-256 digest is stored, in the store shared by every
process, so a token minted by one replica works on another and a revocation reaches all of
them (through the change feed). Resolving a token is a dictionary lookup on its digest in a
small cache, refreshed from the store on a miss and dropped when the feed says it changed:
the hot path does no I/O, and a token's liveness (revoked, expired) is checked on every use.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..errors import InvalidInput, NotFound
from ..protocol import KERNEL_TOKEN_PREFIX, RUN_TOKEN_PREFIX, SERVER_TOKEN_PREFIX
from ..store import Store
from ..store.records import TokenKind, TokenRecord, now_iso

PREFIXES: dict[TokenKind, str] = {
    "kernel": KERNEL_TOKEN_PREFIX, "server": SERVER_TOKEN_PREFIX, "run": RUN_TOKEN_PREFIX,
}
#: A kernel token lives this long past the last heartbeat of the server that asked for it.
KERNEL_TOKEN_GRACE = timedelta(seconds=90)
MAX_RUN_TTL = timedelta(days=90)


@dataclass(frozen=True)
class KernelGrant:
    """What a kernel token proves: the user who started the kernel, and which kernel."""

    username: str
    kernel_id: str

    def __repr__(self) -> str:
        return f"KernelGrant(username={self.username!r}, kernel_id={self.kernel_id!r})"


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def kind_of(token: str) -> TokenKind | None:
    for kind, prefix in PREFIXES.items():
        if token.startswith(prefix):
            return kind
    return None


#: Headers SDKs put a key in, besides ``Authorization``: Anthropic's, Gemini's, Azure's.
#: The proxy never forwards them (``api/egress.py``), nor any header holding the token.
KEY_HEADERS = ("x-api-key", "x-goog-api-key", "api-key")


def token_from_headers(headers: Mapping[str, str]) -> str | None:
    """One of our tokens from where SDKs put a key: ``Authorization: Bearer|token`` or one
    of :data:`KEY_HEADERS`. Never the query string: URLs end up in access logs."""
    authorization = headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() in ("bearer", "token") and kind_of(value):
        return value
    for name in KEY_HEADERS:
        api_key = headers.get(name, "").strip()
        if kind_of(api_key):
            return api_key
    return None


def _at(delta: timedelta) -> str:
    return now_iso(datetime.now(timezone.utc) + delta)


class TokenService:
    """Mint, resolve and revoke tokens; the cache is per process, the truth is the store."""

    def __init__(self, store: Store, *, grace: timedelta = KERNEL_TOKEN_GRACE) -> None:
        self.store = store
        self.grace = grace
        self._cache: dict[str, TokenRecord | None] = {}
        self._lock = threading.Lock()
        self._used: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"TokenService({len(self._cache)} cached)"

    # -- minting ---------------------------------------------------------------------------

    def mint(
        self, kind: TokenKind, username: str, *, kernel_id: str | None = None,
        server_id: str | None = None, name: str | None = None, ttl: timedelta | None = None,
    ) -> tuple[str, TokenRecord]:
        """A new token (shown once, to the caller) and its stored record."""
        token = PREFIXES[kind] + secrets.token_urlsafe(32)
        record = TokenRecord(
            digest=digest_of(token), kind=kind, username=username, created_at=now_iso(),
            kernel_id=kernel_id, server_id=server_id, name=name,
            expires_at=_at(ttl) if ttl is not None else None,
        )
        self.store.put_token(record)
        with self._lock:
            self._cache[record.digest] = record
        return token, record

    def mint_kernel(self, username: str, kernel_id: str, *, server_id: str) -> str:
        token, _ = self.mint("kernel", username, kernel_id=kernel_id, server_id=server_id,
                             ttl=self.grace)
        return token

    # -- resolving -------------------------------------------------------------------------

    def resolve(self, token: str, kinds: Iterable[TokenKind] | None = None) -> TokenRecord | None:
        """The live record of a token (of one of ``kinds``), else None. No I/O when cached.

        The cache is keyed by the SHA-256 of the token, so a lookup's timing says nothing
        about the token beyond what its digest does.
        """
        kind = kind_of(token)
        if kind is None or (kinds is not None and kind not in kinds):
            return None
        digest = digest_of(token)
        with self._lock:
            cached = self._cache.get(digest, ...)
        if cached is ... or kind == "run":
            # Run tokens are revoked by people in other processes (the CLI) and must stop at
            # once: they are read fresh each time (kernel tokens die with their server's
            # kernels, here, and reach other replicas through the change feed).
            cached = self.store.get_token(digest)
            with self._lock:
                self._cache[digest] = cached
        now = now_iso()
        if cached is None or cached.kind != kind or not cached.live(now):
            return None
        with self._lock:
            self._used[digest] = now
        return cached

    def why_refused(self, token: str) -> str | None:
        """For a token we issued that no longer works: why, in words a person can act on."""
        kind = kind_of(token)
        if kind is None:
            return None
        record = self.store.get_token(digest_of(token))
        label = {"kernel": "kernel token", "server": "server token", "run": "run token"}[kind]
        if record is None:
            return f"This {label} is not one this server issued."
        named = f" ({record.name})" if record.name else ""
        if record.revoked_at is not None:
            hint = (" Create a new one: jupyter secrets token create --name NAME --ttl 8h."
                    if kind == "run" else " Restart the kernel for a new one."
                    if kind == "kernel" else "")
            return f"This {label}{named} was revoked at {record.revoked_at}.{hint}"
        if record.expires_at is not None and record.expires_at <= now_iso():
            hint = (" Create a new one: jupyter secrets token create --name NAME --ttl 8h."
                    if kind == "run" else " Restart the kernel for a new one."
                    if kind == "kernel" else "")
            return f"This {label}{named} expired at {record.expires_at}.{hint}"
        return None

    def forget(self, digests: Iterable[str] | None) -> None:
        """Drop cached entries (the change feed said they changed); None drops them all."""
        with self._lock:
            if digests is None:
                self._cache.clear()
            else:
                for digest in digests:
                    self._cache.pop(digest, None)

    def flush_use(self) -> None:
        """Write last-used times, batched off the hot path."""
        with self._lock:
            used, self._used = self._used, {}
        self.store.touch_tokens(used)

    # -- revoking and heartbeats -----------------------------------------------------------

    def revoke_kernel(self, kernel_id: str, *, server_id: str | None = None) -> int:
        """Revoke a kernel's tokens (only those minted for ``server_id`` when given)."""
        revoked = self.store.revoke_tokens(now_iso(), kernel_id=kernel_id, server_id=server_id)
        self.forget(revoked)
        return len(revoked)

    def revoke(self, token_id: str, *, username: str | None = None) -> TokenRecord:
        """Revoke a token by the id the API shows (a digest prefix); a user only their own."""
        matches = [t for t in self.store.list_tokens(username=username)
                   if t.digest.startswith(token_id)] if len(token_id) >= 8 else []
        if len(matches) != 1:
            raise NotFound(f"No token with id {token_id}.")
        self.store.revoke_tokens(now_iso(), digest=matches[0].digest)
        self.forget([matches[0].digest])
        revoked = self.store.get_token(matches[0].digest)
        assert revoked is not None
        return revoked

    def heartbeat(self, server_id: str, kernel_ids: Sequence[str]) -> int:
        """A server says which of its kernels still run: their tokens live on."""
        extended = self.store.extend_tokens(server_id, kernel_ids, _at(self.grace))
        with self._lock:  # cached copies hold the old expiry
            for digest, record in list(self._cache.items()):
                if record is not None and record.server_id == server_id:
                    del self._cache[digest]
        return extended

    def list(self, *, kind: TokenKind | None = None,
             username: str | None = None) -> list[TokenRecord]:
        return self.store.list_tokens(kind=kind, username=username)


def parse_ttl(text: str) -> timedelta:
    """``8h``, ``30m``, ``2d``, ``3600s`` (or plain seconds) -> a bounded duration."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    raw = text.strip().lower()
    number, unit = (raw[:-1], raw[-1]) if raw and raw[-1] in units else (raw, "s")
    if not number.isdigit() or int(number) <= 0:
        raise InvalidInput("ttl must be a positive duration like 30m, 8h or 7d.")
    ttl = timedelta(seconds=int(number) * units[unit])
    if ttl > MAX_RUN_TTL:
        raise InvalidInput(f"ttl may be at most {MAX_RUN_TTL.days} days.")
    return ttl
