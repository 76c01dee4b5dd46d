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
from dataclasses import dataclass
from pathlib import Path

from .crypto import KEY_BYTES, Keyring, MasterKey, export_key
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


def _key_lines(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def write_key_file(path: Path, keys: list[str]) -> None:
    """Replace the key file atomically (mode 0600): readers see the old or the new, whole."""
    Keyring.from_text(",".join(keys))  # refuse to write anything that would not load
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write("\n".join(keys) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def key_file_with_new_primary(path: Path, new_key: str) -> None:
    """Put ``new_key`` first in the key file, keeping the others to open older data."""
    _read_key_file(path)  # the same safety checks as loading
    write_key_file(path, [new_key, *_key_lines(path.read_text(encoding="ascii"))])


def key_file_keeping(path: Path, key_ids: set[str]) -> list[str]:
    """Drop keys no ciphertext needs any more (the primary always stays); return dropped ids."""
    lines = _key_lines(path.read_text(encoding="ascii"))
    ids = [MasterKey.from_text(line).key_id for line in lines]
    keep = [line for index, (line, key_id) in enumerate(zip(lines, ids, strict=True))
            if index == 0 or key_id in key_ids]
    if len(keep) != len(lines):
        write_key_file(path, keep)
    return [key_id for index, key_id in enumerate(ids) if index and key_id not in key_ids]


@dataclass
class KeySource:
    """Where this process's keyring comes from, so it can be reloaded when the file changes.

    A key given in the environment is fixed for the life of the process; a key file is
    checked for changes (``jupyter secrets rotate-key`` rewrites it), so a running server
    follows a rotation without a restart.
    """

    env_value: str | None
    key_file: Path
    _stamp: tuple[int, int, int] | None = None

    @property
    def from_env(self) -> bool:
        return bool(self.env_value and self.env_value.strip())

    def describe(self) -> str:
        return KEY_ENV if self.from_env else str(self.key_file)

    def source_label(self) -> str:
        """``env``, or ``file:<resolved path>``: what a rotation needs to know of a server."""
        return "env" if self.from_env else f"file:{self.key_file.resolve()}"

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.key_file.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def load(self, store_key_ids: Callable[[], set[str]], log: logging.Logger) -> Keyring:
        keyring = load_keyring(env_value=self.env_value, key_file=self.key_file,
                               store_key_ids=store_key_ids, log=log)
        self._stamp = None if self.from_env else self._file_stamp()
        return keyring

    def reload_if_changed(self, log: logging.Logger) -> Keyring | None:
        """The key file's new keyring when it changed since the last load, else None."""
        if self.from_env:
            return None
        stamp = self._file_stamp()
        if stamp is None or stamp == self._stamp:
            return None
        keyring = _read_key_file(self.key_file)
        self._stamp = stamp
        log.info("jupyter-secrets: reloaded master keys from %s: %s", self.key_file,
                 ", ".join(keyring.key_ids))
        return keyring


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

