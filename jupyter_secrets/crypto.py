"""Envelope encryption: the only module besides ``egress`` that handles plaintext.

Each secret value is sealed with its own random 256-bit data key (AES-256-GCM); the data
key is wrapped by a master key (AES-256-GCM too). Both layers authenticate the same
associated data, the secret's ``id``, ``name`` and ``version``, so a ciphertext copied
onto another row, or an old version replayed, fails to open instead of yielding the
wrong value. Every sealed record names the id of the master key that wrapped it, which
is what makes rotation lossless and a wrong key a clear error rather than garbage.

Plaintext travels through the rest of the code as :class:`Plaintext`, an opaque box whose
``repr``/``str`` never show the value and which refuses to be pickled. Only
:func:`reveal` opens the box; it is for this module and the egress module.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import IntegrityFailure, MasterKeyInvalid, MasterKeyUnavailable

KEY_BYTES = 32
NONCE_BYTES = 12
_AAD_PREFIX = b"jupyter-secrets/v1"
_KEY_ID_CONTEXT = b"jupyter-secrets/key-id/v1\x00"


class Plaintext:
    """A secret value in memory. Shows its size, never its content."""

    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError("a secret value must be text")
        self._text = text

    @property
    def byte_length(self) -> int:
        return len(self._text.encode("utf-8"))

    def __repr__(self) -> str:
        return f"<Plaintext redacted, {self.byte_length} bytes>"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("secret values cannot be pickled")

    def __eq__(self, other: object) -> bool:
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


def reveal(value: Plaintext) -> str:
    """Open the box. Callers outside ``crypto`` and ``egress`` are a review finding."""
    return value._text


@dataclass(frozen=True)
class SecretIdentity:
    """What a ciphertext is bound to: moving it to another identity breaks authentication."""

    id: str
    name: str
    version: int

    def aad(self) -> bytes:
        parts = [_AAD_PREFIX, self.id.encode(), self.name.encode(), str(self.version).encode()]
        return b"\x00".join(parts)


@dataclass(frozen=True)
class Sealed:
    """A stored ciphertext: nonce-prefixed value and nonce-prefixed wrapped data key."""

    key_id: str
    wrapped_key: bytes
    ciphertext: bytes

    def __repr__(self) -> str:
        return f"Sealed(key_id={self.key_id!r}, {len(self.ciphertext)} bytes)"


class MasterKey:
    """A 256-bit key-encryption key, known by a short id derived from it."""

    __slots__ = ("_aead", "key_id")

    def __init__(self, material: bytes) -> None:
        if len(material) != KEY_BYTES:
            raise MasterKeyInvalid(
                f"A master key must be {KEY_BYTES} bytes (got {len(material)}). "
                "Generate one with `jupyter secrets generate-key`."
            )
        self.key_id = hashlib.sha256(_KEY_ID_CONTEXT + material).hexdigest()[:16]
        self._aead = AESGCM(material)

    @classmethod
    def from_text(cls, text: str) -> MasterKey:
        """Parse base64 (standard or URL-safe, padding optional) of 32 random bytes."""
        cleaned = text.strip()
        padded = cleaned + "=" * (-len(cleaned) % 4)
        try:
            material = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raise MasterKeyInvalid(
                "A master key must be 32 random bytes in base64 (44 characters). "
                "Generate one with `jupyter secrets generate-key`."
            ) from None
        return cls(material)

    def wrap(self, data_key: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data_key, aad)

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        return self._aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], aad)

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self.key_id!r})"


def export_key(key_bytes: bytes) -> str:
    """The text form of a new master key, as ``JUPYTER_SECRETS_KEY`` takes it."""
    return base64.urlsafe_b64encode(key_bytes).decode("ascii")


class Keyring:
    """The configured master keys: the first seals new data, all of them can open."""

    def __init__(self, keys: Iterable[MasterKey]) -> None:
        self._keys: dict[str, MasterKey] = {}
        for key in keys:
            self._keys.setdefault(key.key_id, key)
        if not self._keys:
            raise MasterKeyInvalid("No master key is configured: set JUPYTER_SECRETS_KEY.")
        self.primary = next(iter(self._keys.values()))

    @classmethod
    def from_text(cls, text: str) -> Keyring:
        """Parse one key or several separated by commas or newlines (first is primary)."""
        parts = [p for p in text.replace("\n", ",").split(",") if p.strip()]
        return cls(MasterKey.from_text(p) for p in parts)

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    def get(self, key_id: str, secret_name: str) -> MasterKey:
        try:
            return self._keys[key_id]
        except KeyError:
            raise MasterKeyUnavailable(
                f"Secret {secret_name} is sealed with master key id {key_id}, which is not "
                f"configured (configured: {', '.join(self._keys)}). Add that key to "
                "JUPYTER_SECRETS_KEY (comma-separated, new key first) or restore its key file."
            ) from None

    def __repr__(self) -> str:
        return f"Keyring(primary={self.primary.key_id!r}, keys={self.key_ids!r})"


def _wrap_aad(identity: SecretIdentity, key_id: str) -> bytes:
    return identity.aad() + b"\x00wrap\x00" + key_id.encode()


def seal(keyring: Keyring, identity: SecretIdentity, value: Plaintext) -> Sealed:
    """Encrypt ``value`` under a fresh data key wrapped by the primary master key."""
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = nonce + AESGCM(data_key).encrypt(nonce, value._text.encode(), identity.aad())
    master = keyring.primary
    wrapped = master.wrap(data_key, _wrap_aad(identity, master.key_id))
    return Sealed(master.key_id, wrapped, ciphertext)


def _tampered(identity: SecretIdentity) -> IntegrityFailure:
    return IntegrityFailure(
        f"Secret {identity.name} (version {identity.version}) failed its integrity check: "
        "its stored row was altered or copied from another secret. Replace its value."
    )


def _unwrap(keyring: Keyring, identity: SecretIdentity, sealed: Sealed) -> bytes:
    master = keyring.get(sealed.key_id, identity.name)
    try:
        return master.unwrap(sealed.wrapped_key, _wrap_aad(identity, sealed.key_id))
    except InvalidTag:
        raise _tampered(identity) from None


def open_sealed(keyring: Keyring, identity: SecretIdentity, sealed: Sealed) -> Plaintext:
    """Decrypt, verifying that the ciphertext belongs to exactly this identity."""
    data_key = _unwrap(keyring, identity, sealed)
    nonce, body = sealed.ciphertext[:NONCE_BYTES], sealed.ciphertext[NONCE_BYTES:]
    try:
        raw = AESGCM(data_key).decrypt(nonce, body, identity.aad())
    except InvalidTag:
        raise _tampered(identity) from None
    return Plaintext(raw.decode("utf-8"))


def rewrap(keyring: Keyring, identity: SecretIdentity, sealed: Sealed) -> Sealed:
    """Re-wrap the data key under the primary master key; the value ciphertext is kept."""
    if sealed.key_id == keyring.primary.key_id:
        return sealed
    data_key = _unwrap(keyring, identity, sealed)
    # Prove the data key still opens the value before committing to the new wrapping.
    open_sealed(keyring, identity, sealed)
    master = keyring.primary
    return Sealed(master.key_id, master.wrap(data_key, _wrap_aad(identity, master.key_id)),
                  sealed.ciphertext)
