"""Where the master keys come from: ``JUPYTER_SECRETS_KEY`` or a private key file.

There is no fixed or derivable fallback key. When no key is configured, a random one
is written to a key file with mode 0600, outside the database's folder, so a copy of
the database folder does not carry its key along. That file is only created while the
store holds no secret sealed under some other key: a missing key is then an error to
fix, not a reason to start a fresh keyring that can open nothing.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

from .crypto import KEY_BYTES, Keyring, export_key
from .errors import MasterKeyInvalid, MasterKeyUnavailable
from .protocol import KEY_ENV


def generate_key_text() -> str:
    """A new random master key in the text form ``JUPYTER_SECRETS_KEY`` takes."""
    return export_key(os.urandom(KEY_BYTES))


def _read_key_file(path: Path) -> Keyring:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise MasterKeyInvalid(
            f"The master key file {path} is readable by other users (mode {mode:o}). "
            f"Run `chmod 600 {path}` and start again."
        )
    return Keyring.from_text(path.read_text(encoding="ascii"))


def _create_key_file(path: Path) -> Keyring:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = generate_key_text()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text + "\n")
    return Keyring.from_text(text)


def load_keyring(
    *,
    env_value: str | None,
    key_file: Path,
    store_key_ids: Callable[[], set[str]],
    log: logging.Logger,
) -> Keyring:
    """Load the keyring from the environment, else the key file (creating it when safe)."""
    if env_value and env_value.strip():
        keyring = Keyring.from_text(env_value)
        log.info("jupyter-secrets: master keys from %s: %s", KEY_ENV, ", ".join(keyring.key_ids))
        return keyring
    if key_file.exists():
        keyring = _read_key_file(key_file)
        log.info("jupyter-secrets: master key %s from %s", keyring.primary.key_id, key_file)
        return keyring
    in_use = store_key_ids()
    if in_use:
        raise MasterKeyUnavailable(
            f"The store holds secrets sealed with master key id(s) {', '.join(sorted(in_use))} "
            f"but neither {KEY_ENV} nor the key file {key_file} is present. Set {KEY_ENV} to "
            "that key or restore the key file; a new key could not open them."
        )
    keyring = _create_key_file(key_file)
    log.warning(
        "jupyter-secrets: no %s set; created master key %s in %s (mode 0600). Back it up: "
        "without it the stored secrets cannot be opened.",
        KEY_ENV, keyring.primary.key_id, key_file,
    )
    return keyring

