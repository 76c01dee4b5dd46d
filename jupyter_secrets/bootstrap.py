"""Turn settings into a ready service: open the store, load the keys, check they match.

The server extension and the CLI both come through here, so they read the same store
with the same keys.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir

from .keys import KEY_ENV, load_keyring
from .service import Limits, SecretsService
from .store import open_store, sqlite_path_from_url

STORE_URL_ENV = "JUPYTER_SECRETS_STORE_URL"
KEY_FILE_ENV = "JUPYTER_SECRETS_KEY_FILE"


def default_store_url() -> str:
    if os.environ.get(STORE_URL_ENV):
        return os.environ[STORE_URL_ENV]
    return "sqlite:///" + str(Path(jupyter_data_dir(), "jupyter_secrets", "secrets.db"))


def default_key_file() -> str:
    """Beside, not inside, the database's folder: copying that folder leaves the key behind."""
    if os.environ.get(KEY_FILE_ENV):
        return os.environ[KEY_FILE_ENV]
    return str(Path(jupyter_data_dir(), "jupyter_secrets.key"))


def open_service(
    *, store_url: str, key_file: str, limits: Limits, log: logging.Logger
) -> SecretsService:
    store = open_store(store_url)
    key_path = Path(key_file).expanduser()
    if key_path.parent.resolve() == sqlite_path_from_url(store_url).parent.resolve():
        log.warning(
            "jupyter-secrets: the key file %s sits in the database's folder; a copy of that "
            "folder carries the key along. Move it elsewhere.", key_path,
        )
    keyring = load_keyring(
        env_value=os.environ.get(KEY_ENV),
        key_file=key_path,
        store_key_ids=store.key_ids_in_use,
        log=log,
    )
    service = SecretsService(store, keyring, limits)
    missing = service.missing_key_ids()
    if missing:
        log.error(
            "jupyter-secrets: the store holds secrets sealed with master key id(s) %s, which "
            "are not configured (configured: %s). Those secrets cannot be used until the key "
            "is added to %s.", ", ".join(missing), ", ".join(keyring.key_ids), KEY_ENV,
        )
    return service
