"""The store interface: rows and transactions, split by concern. No rules live here.

A store keeps metadata, ciphertext and names; it never sees a value. The services decide
what a change means (kinds, versions, "in use" conflicts) and run those checks inside a
:class:`Transaction`, so check and write are atomic on every backend. A new backend is one
module implementing :class:`Store`, one line in ``store/__init__.py``'s registry, and a pass
of the shared store suite (``tests/test_store_contract.py``).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager

from ..crypto import Sealed
from .records import (
    ALL_EVENTS,
    AuditFilter,
    AuditRecord,
    Changes,
    ConnectionRecord,
    Kind,
    RuntimeRecord,
    SecretRecord,
    TokenKind,
    TokenRecord,
)


class Transaction(abc.ABC):
    """One atomic unit of writes. Reads through it see (and lock) what it will change."""

    # -- secrets ---------------------------------------------------------------------------

    @abc.abstractmethod
    def get_secret(self, name: str) -> tuple[SecretRecord, Sealed] | None:
        """The row, locked against other writers until the transaction ends."""

    def get_secrets(self, names: Sequence[str]) -> dict[str, tuple[SecretRecord, Sealed]]:
        """The rows of ``names`` that exist, locked as ``get_secret`` locks them.

        A batch reads its rows through this once; a store over the network overrides it to
        answer in one round trip instead of one per name.
        """
        found = {}
        for name in names:
            row = self.get_secret(name)
            if row is not None:
                found[name] = row
        return found

    @abc.abstractmethod
    def insert_secret(self, record: SecretRecord, sealed: Sealed) -> None: ...

    @abc.abstractmethod
    def update_secret(
        self, record: SecretRecord, sealed: Sealed | None, *, expected_version: int
    ) -> None:
        """Write the record's mutable fields (and the ciphertext when given).

        Raises ``errors.ConcurrentChange`` when the row is no longer at ``expected_version``.
        """

    @abc.abstractmethod
    def delete_secret(self, secret_id: str) -> None: ...

    @abc.abstractmethod
    def sealed_rows(self) -> list[tuple[SecretRecord, Sealed]]:
        """Every secret with its ciphertext, locked (key rotation)."""

    @abc.abstractmethod
    def set_sealed(self, secret_id: str, sealed: Sealed) -> None:
        """Replace a row's wrapped key and ciphertext without a new version (rotation)."""

    # -- connections -----------------------------------------------------------------------

    @abc.abstractmethod
    def get_connection(self, name: str) -> ConnectionRecord | None: ...

    @abc.abstractmethod
    def list_connections(self) -> list[ConnectionRecord]: ...

    @abc.abstractmethod
    def put_connection(self, record: ConnectionRecord) -> None:
        """Insert or overwrite a connection row, as given (timestamps included)."""

    @abc.abstractmethod
    def delete_connection(self, name: str) -> None: ...


class SecretRows(abc.ABC):
    """Reads of secrets outside a transaction, plus the use counter."""

    @abc.abstractmethod
    def list_secrets(
        self, *, owner: str | None = None, kind: Kind | None = None
    ) -> list[SecretRecord]:
        """Metadata of all secrets, sorted by name, optionally filtered."""

    @abc.abstractmethod
    def get_secret(self, name: str) -> SecretRecord | None: ...

    @abc.abstractmethod
    def get_sealed(self, name: str) -> tuple[SecretRecord, Sealed] | None: ...

    @abc.abstractmethod
    def key_ids_in_use(self) -> set[str]: ...

    @abc.abstractmethod
    def record_use(self, counts: Mapping[str, int], at: str) -> None:
        """Add to the use count and set the last-used time of the named secrets."""


class ConnectionRows(abc.ABC):
    @abc.abstractmethod
    def list_connections(self) -> list[ConnectionRecord]: ...

    @abc.abstractmethod
    def get_connection(self, name: str) -> ConnectionRecord | None: ...


class AuditRows(abc.ABC):
    @abc.abstractmethod
    def append_audit(self, records: Sequence[AuditRecord]) -> None:
        """Append events (ids assigned here, in order) in one transaction."""

    def try_append_audit(self, records: Sequence[AuditRecord]) -> bool:
        """Append at once if that needs no waiting at all, else write nothing: ``False``.

        Called on the event loop, where a store that must wait (a lock held elsewhere, a
        network round trip) must not: those events then go to :meth:`append_audit` in a
        thread. Stores that always wait keep this default.
        """
        return False

    def checkpoint(self) -> None:
        """Housekeeping :meth:`try_append_audit` leaves to a thread (nothing by default)."""
        return None

    @abc.abstractmethod
    def query_audit(self, query: AuditFilter = ALL_EVENTS) -> list[AuditRecord]:
        """Newest first; ``before_id`` continues a page, ``since`` is ISO UTC."""

    @abc.abstractmethod
    def prune_audit(self, older_than: str) -> int:
        """Delete events older than an ISO UTC time; return how many went."""


class RuntimeRows(abc.ABC):
    """Running servers announce the master keys they hold (key rotation checks them)."""

    @abc.abstractmethod
    def announce_runtime(self, record: RuntimeRecord) -> None: ...

    @abc.abstractmethod
    def runtimes_seen_since(self, since: str) -> list[RuntimeRecord]: ...

    @abc.abstractmethod
    def forget_runtime(self, runtime_id: str) -> None: ...


class TokenRows(abc.ABC):
    """Issued credentials by digest, shared by every process on the store.

    Writes append ``("token", digest)`` to the change feed, so other processes drop a
    revoked token from their caches.
    """

    @abc.abstractmethod
    def put_token(self, record: TokenRecord) -> None: ...

    @abc.abstractmethod
    def get_token(self, digest: str) -> TokenRecord | None: ...

    @abc.abstractmethod
    def list_tokens(
        self, *, kind: TokenKind | None = None, username: str | None = None
    ) -> list[TokenRecord]:
        """Newest first."""

    @abc.abstractmethod
    def revoke_tokens(
        self, at: str, *, digest: str | None = None, kernel_id: str | None = None,
        server_id: str | None = None,
    ) -> list[str]:
        """Revoke what matches (at least one filter is required); return the digests."""

    @abc.abstractmethod
    def extend_tokens(self, server_id: str, kernel_ids: Sequence[str], until: str) -> int:
        """A server's heartbeat: push out the expiry of its live kernels' tokens."""

    @abc.abstractmethod
    def touch_tokens(self, used: Mapping[str, str]) -> None:
        """Set last-used times (digest -> time), batched off the hot path."""


class CounterRows(abc.ABC):
    """Fixed-window counters (rate limits, quotas) shared by every process on the store."""

    @abc.abstractmethod
    def count_hit(self, key: str, window: str, limit: int) -> int | None:
        """Add one to ``(key, window)`` unless it already reached ``limit``; return the new
        count, or None when the limit was already reached (nothing added)."""

    @abc.abstractmethod
    def prune_counters(self, before_window: str) -> int: ...


class Store(SecretRows, ConnectionRows, AuditRows, RuntimeRows, TokenRows, CounterRows):
    """Everything the runtime needs from a database."""

    #: Where the data lives, for people (a path, or a URL without its password).
    location: str

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[Transaction]:
        """A write transaction: committed when the block ends, rolled back if it raises.

        Every secret or connection it writes is appended to the change feed in the same
        transaction, so a committed change is always visible to :meth:`changes_since`.
        """

    @abc.abstractmethod
    def changes_since(self, marker: int | None) -> Changes:
        """What was written since ``marker`` (None: the feed's current end, nothing touched).

        ``touched`` is None when the marker is older than what the feed keeps: reload all.
        """

    def local_folder(self) -> str | None:
        """The folder holding the data on this machine, if any (a key file must not be there)."""
        return None

    def close(self) -> None:
        """Release connections; a store without any has nothing to do."""
