"""Secret stores, picked by the URL's scheme from a small registry.

Adding a backend: a module with a ``Store`` subclass that has ``from_url(url)``, one line in
``BACKENDS``, and the shared store suite (``tests/test_store_contract.py``) passing on it.
"""

from __future__ import annotations

from importlib import import_module
from urllib.parse import urlsplit

from ..errors import InvalidInput
from .base import Store, Transaction
from .records import AuditFilter, AuditRecord, ChangeResult, ConnectionRecord, Kind, SecretRecord

__all__ = [
    "BACKENDS",
    "AuditFilter",
    "AuditRecord",
    "ChangeResult",
    "ConnectionRecord",
    "Kind",
    "SecretRecord",
    "Store",
    "Transaction",
    "open_store",
]

#: URL scheme -> "module:class" (imported only when used: a driver may be an extra).
BACKENDS: dict[str, str] = {
    "sqlite": "jupyter_secrets.store.sqlite:SQLiteStore",
    "postgresql": "jupyter_secrets.store.postgres:PostgresStore",
    "postgres": "jupyter_secrets.store.postgres:PostgresStore",
}


def open_store(url: str) -> Store:
    """Open (creating and migrating if needed) the store a URL names."""
    scheme = urlsplit(url).scheme
    if scheme not in BACKENDS:
        raise InvalidInput(
            f"Unsupported store URL scheme {scheme!r}: use one of "
            f"{', '.join(s + '://' for s in BACKENDS)} (like sqlite:///absolute/path.db)."
        )
    module, _, cls = BACKENDS[scheme].partition(":")
    store: Store = getattr(import_module(module), cls).from_url(url)
    return store
