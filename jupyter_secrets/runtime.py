"""One object wiring everything below the apps: built once from the settings.

The server extension, the secrets service and the CLI all call :func:`build_runtime`, so they
open the same store with the same keys and get the same services. Apps keep the runtime under
one key (``RUNTIME_KEY`` in tornado's settings) and reach it through one typed property.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .egress.outbound import Egress
from .egress.redaction import ValueIndex
from .egress.transport import build_client
from .keys import load_keyring
from .protocol import KEY_ENV
from .services.audit import AuditLog, PathLookup
from .services.connections import ConnectionsService
from .services.secrets import SecretsService
from .services.tokens import KernelTokenRegistry
from .settings import SecretsSettings
from .store import open_store

RUNTIME_KEY = "jupyter_secrets_runtime"


@dataclass(eq=False)
class SecretsRuntime:
    settings: SecretsSettings
    secrets: SecretsService
    connections: ConnectionsService
    audit: AuditLog
    values: ValueIndex
    tokens: KernelTokenRegistry
    egress: Egress

    def __repr__(self) -> str:
        return f"SecretsRuntime(store={self.secrets.store!r})"

    async def aclose(self) -> None:
        """Finish what is queued (usage, audit) and release the HTTP client and the store."""
        await self.egress.client.aclose()
        self.egress.usage.flush()
        await self.audit.aclose()
        self.secrets.store.close()

    def close(self) -> None:
        """For callers without an event loop (the CLI): write what is queued, close the store."""
        self.egress.usage.flush()
        self.secrets.store.close()


def _open_secrets(settings: SecretsSettings, log: logging.Logger) -> SecretsService:
    store = open_store(settings.store_url)
    key_path = Path(settings.key_file).expanduser()
    folder = store.local_folder()
    if folder is not None and key_path.parent.resolve() == Path(folder).resolve():
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
    service = SecretsService(store, keyring, settings.limits())
    missing = service.missing_key_ids()
    if missing:
        log.error(
            "jupyter-secrets: the store holds secrets sealed with master key id(s) %s, which "
            "are not configured (configured: %s). Those secrets cannot be used until the key "
            "is added to %s.", ", ".join(missing), ", ".join(keyring.key_ids), KEY_ENV,
        )
    return service


def build_runtime(
    settings: SecretsSettings,
    *,
    log: logging.Logger,
    notebook_path: PathLookup | None = None,
) -> SecretsRuntime:
    """Open the store, load the keys, and build the services on top of them.

    Raises a ``SecretsError`` (key missing or unsafe, store unreachable) with a message to act on.
    """
    secrets = _open_secrets(settings, log)
    audit = AuditLog(secrets.store, retention_days=settings.audit_retention_days,
                     notebook_path=notebook_path)
    client = build_client(connect_timeout=settings.connect_timeout,
                          idle_timeout=settings.idle_timeout)
    return SecretsRuntime(
        settings=settings,
        secrets=secrets,
        connections=ConnectionsService(secrets),
        audit=audit,
        values=ValueIndex(secrets),
        tokens=KernelTokenRegistry(),
        egress=Egress(secrets, client, max_redirects=settings.max_redirects),
    )
