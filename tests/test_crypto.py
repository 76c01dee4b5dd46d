"""Envelope encryption: values are bound to their identity and their master key."""

from __future__ import annotations

import pickle

import pytest

from jupyter_secrets import crypto
from jupyter_secrets.crypto import Keyring, MasterKey, Plaintext, SecretIdentity
from jupyter_secrets.errors import IntegrityFailure, MasterKeyInvalid, MasterKeyUnavailable
from jupyter_secrets.keys import generate_key_text

IDENT = SecretIdentity("id-1", "TOKEN", 1)


def keyring(*texts: str) -> Keyring:
    return Keyring.from_text(",".join(texts))


def test_seal_then_open_round_trips_exact_text(canary):
    ring = keyring(generate_key_text())
    value = f" {canary}\n\tünïcode "
    sealed = crypto.seal(ring, IDENT, Plaintext(value))
    assert canary.encode() not in sealed.ciphertext + sealed.wrapped_key
    assert sealed.key_id == ring.primary.key_id
    assert crypto.reveal(crypto.open_sealed(ring, IDENT, sealed)) == value


def test_each_seal_uses_a_fresh_data_key_and_nonce(canary):
    ring = keyring(generate_key_text())
    a = crypto.seal(ring, IDENT, Plaintext(canary))
    b = crypto.seal(ring, IDENT, Plaintext(canary))
    assert a.ciphertext != b.ciphertext and a.wrapped_key != b.wrapped_key


@pytest.mark.parametrize("other", [
    SecretIdentity("id-2", "TOKEN", 1),
    SecretIdentity("id-1", "OTHER", 1),
    SecretIdentity("id-1", "TOKEN", 2),
])
def test_ciphertext_moved_to_another_identity_fails_clearly(canary, other):
    ring = keyring(generate_key_text())
    sealed = crypto.seal(ring, IDENT, Plaintext(canary))
    with pytest.raises(IntegrityFailure, match=f"{other.name}.*integrity"):
        crypto.open_sealed(ring, other, sealed)


def test_flipped_ciphertext_bit_is_detected(canary):
    ring = keyring(generate_key_text())
    sealed = crypto.seal(ring, IDENT, Plaintext(canary))
    flipped = bytearray(sealed.ciphertext)
    flipped[-1] ^= 1
    tampered = crypto.Sealed(sealed.key_id, sealed.wrapped_key, bytes(flipped))
    with pytest.raises(IntegrityFailure):
        crypto.open_sealed(ring, IDENT, tampered)


def test_wrong_master_key_names_the_key_id_expected(canary):
    old = keyring(generate_key_text())
    sealed = crypto.seal(old, IDENT, Plaintext(canary))
    new = keyring(generate_key_text())
    with pytest.raises(MasterKeyUnavailable) as info:
        crypto.open_sealed(new, IDENT, sealed)
    message = str(info.value)
    assert old.primary.key_id in message and new.primary.key_id in message
    assert "JUPYTER_SECRETS_KEY" in message


def test_rewrap_moves_to_the_primary_key_and_keeps_the_value(canary):
    old_text, new_text = generate_key_text(), generate_key_text()
    sealed = crypto.seal(keyring(old_text), IDENT, Plaintext(canary))
    both = keyring(new_text, old_text)
    rewrapped = crypto.rewrap(both, IDENT, sealed)
    assert rewrapped.key_id == both.primary.key_id != sealed.key_id
    assert rewrapped.ciphertext == sealed.ciphertext
    assert crypto.reveal(crypto.open_sealed(keyring(new_text), IDENT, rewrapped)) == canary


@pytest.mark.parametrize("text", ["", "short", "!" * 44, "QUFBQQ=="])
def test_malformed_master_keys_are_refused(text):
    with pytest.raises(MasterKeyInvalid, match=r"generate-key|set JUPYTER_SECRETS_KEY"):
        Keyring.from_text(text)


def test_key_text_accepts_standard_and_urlsafe_base64():
    import base64
    import os

    raw = os.urandom(32)
    ids = {MasterKey.from_text(base64.b64encode(raw).decode()).key_id,
           MasterKey.from_text(base64.urlsafe_b64encode(raw).decode().rstrip("=")).key_id}
    assert len(ids) == 1


def test_plaintext_never_shows_or_pickles_its_value(canary):
    value = Plaintext(canary)
    for shown in (repr(value), str(value), f"{value}", f"{value!r}", "%s" % (value,)):  # noqa: UP031
        assert canary not in shown
    assert "redacted" in repr(value)
    with pytest.raises(TypeError):
        pickle.dumps(value)


def test_key_objects_show_only_ids():
    text = generate_key_text()
    ring = keyring(text)
    assert text not in repr(ring) and text not in repr(ring.primary)
    assert ring.primary.key_id in repr(ring)
