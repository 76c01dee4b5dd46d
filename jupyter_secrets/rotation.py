"""Master key rotation that running servers survive.

Re-wrapping every data key under a new master key is one transaction (``SecretsService.
rotate_master_key``). What used to break was everything around it: a server still holding
only the old key answers 503 for every secret afterwards. So a rotation first checks the
servers that announced themselves (``runtimes`` in the store):

* key file (the default): the new key is written first into the file, keeping the old; every
  server following that file reloads it within a second and announces the new key id; only
  then are the data keys re-wrapped, and the old key dropped from the file;
* ``JUPYTER_SECRETS_KEY``: a process cannot learn a key from another's environment, so the
  rotation refuses while a live server lacks the new key, and says how to restart it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .errors import SecretsError
from .keys import generate_key_text, key_file_keeping, key_file_with_new_primary
from .protocol import KEY_ENV
from .runtime import SecretsRuntime, live_runtimes
from .store.records import RuntimeRecord


class RotationBlocked(SecretsError):
    """Rotating now would leave a running server unable to open the secrets."""


@dataclass
class RotationResult:
    rewrapped: int
    primary: str
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _names(servers: list[RuntimeRecord]) -> str:
    return ", ".join(f"{s.host} pid {s.pid} ({s.key_source})" for s in servers)


def rotate(runtime: SecretsRuntime, *, force: bool = False, wait_s: float = 15.0) -> RotationResult:
    """Rotate as the key source allows; ``RotationBlocked`` says what to do instead."""
    store = runtime.secrets.store
    others = [r for r in live_runtimes(store) if r.id != runtime.id]
    if runtime.keys.from_env:
        return _rotate_env(runtime, others, force)
    return _rotate_file(runtime, others, force, wait_s)


def _rotate_env(
    runtime: SecretsRuntime, others: list[RuntimeRecord], force: bool
) -> RotationResult:
    keyring = runtime.secrets.keyring
    primary = keyring.primary.key_id
    lacking = [r for r in others if primary not in r.key_ids]
    if lacking and not force:
        raise RotationBlocked(
            f"Running server(s) {_names(lacking)} do not hold the new master key {primary}: "
            "after this rotation they could not open any secret. Restart them first with "
            f'{KEY_ENV}="<new key>,<old key>" (new first; they then seal with the new key and '
            "still open the old), then run jupyter secrets rotate-key again. --force rotates "
            "anyway (those servers answer 503 until restarted)."
        )
    result = RotationResult(runtime.secrets.rotate_master_key(), primary)
    if len(keyring.key_ids) > 1 and not runtime.secrets.missing_key_ids():
        result.notes.append(
            f"No secret needs the other key(s) any more: set {KEY_ENV} to the new key alone "
            "(the first one) when you next restart the servers."
        )
    return result


def _rotate_file(
    runtime: SecretsRuntime, others: list[RuntimeRecord], force: bool, wait_s: float
) -> RotationResult:
    key_file = runtime.keys.key_file
    source = runtime.keys.source_label()
    elsewhere = [r for r in others if r.key_source != source]
    if elsewhere and not force:
        raise RotationBlocked(
            f"Running server(s) {_names(elsewhere)} take their keys from elsewhere than "
            f"{key_file}, so they would not follow this rotation. Rotate where their keys "
            f"live ({KEY_ENV} or their key file), or stop them first; --force rotates anyway."
        )
    key_file_with_new_primary(key_file, generate_key_text())
    runtime.reload_keys()
    primary = runtime.secrets.keyring.primary.key_id
    followers = [r for r in others if r.key_source == source]
    deadline = time.monotonic() + wait_s
    while True:
        seen = {r.id: r for r in live_runtimes(runtime.secrets.store)}
        behind = [r for r in followers if r.id in seen and primary not in seen[r.id].key_ids]
        if not behind:
            break
        if time.monotonic() > deadline:
            if force:
                break
            raise RotationBlocked(
                f"{key_file} now holds the new master key {primary} first (the old ones kept, "
                f"so nothing is lost), but server(s) {_names(behind)} did not pick it up "
                f"within {wait_s:.0f} s. Nothing was re-wrapped. Check that they run, then run "
                "jupyter secrets rotate-key again."
            )
        time.sleep(0.2)
    result = RotationResult(runtime.secrets.rotate_master_key(), primary)
    result.dropped = key_file_keeping(key_file, runtime.secrets.store.key_ids_in_use())
    runtime.reload_keys()
    if followers:
        result.notes.append(f"{len(followers)} running server(s) followed the key file.")
    return result
