"""Secret stores, chosen by URL (``sqlite:///path/to/secrets.db``)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import InvalidInput
from .base import ChangeResult, PatchMetadata, PutValue, Remove, SecretRecord, SecretStore

__all__ = [
    "ChangeResult",
    "PatchMetadata",
    "PutValue",
    "Remove",
    "SecretRecord",
    "SecretStore",
    "open_store",
    "sqlite_path_from_url",
]


def sqlite_path_from_url(url: str) -> Path:
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise InvalidInput(
            f"Unsupported store URL scheme {parts.scheme!r}: use sqlite:///absolute/path.db "
            "(PostgreSQL support is planned)."
        )
    raw = unquote(parts.netloc + parts.path)
    if not raw or raw == "/":
        raise InvalidInput("The store URL names no file: use sqlite:///absolute/path/secrets.db.")
    return Path(raw).expanduser()


def open_store(url: str) -> SecretStore:
    """Open (creating if needed) the store a URL names."""
    from .sqlite import SQLiteStore

    return SQLiteStore(sqlite_path_from_url(url))
