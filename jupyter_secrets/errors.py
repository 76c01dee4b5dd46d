"""Errors the secrets services raise.

Services know nothing of HTTP: the REST layer maps each class to a status code
(``server/errors.py``) and the CLI prints the message. Every message is written for
a person who has to act on it and never contains a secret value.
"""

from __future__ import annotations


class SecretsError(Exception):
    """Base class: ``str(error)`` is the whole user-facing message."""


class InvalidInput(SecretsError):
    """The caller sent something malformed: a bad name, an empty value, an unknown field."""


class NotFound(SecretsError):
    """The named secret (or connection) does not exist."""


class SecretNotFound(NotFound):
    """A secret asked for by name does not exist; ``name`` says which."""

    def __init__(self, name: str) -> None:
        super().__init__(f"No secret named {name}.")
        self.name = name


class AlreadyExists(SecretsError):
    """A create would overwrite an existing name."""


class Conflict(SecretsError):
    """The change is well-formed but not allowed in the current state (e.g. a system secret)."""


class ConcurrentChange(Conflict):
    """Another writer changed the row between our read and our write; try again."""


class PermissionDenied(SecretsError):
    """The caller's role does not allow the action."""


class TooLarge(SecretsError):
    """A value, body or batch exceeds its configured limit."""


class MasterKeyError(SecretsError):
    """Base for master-key problems."""


class MasterKeyUnavailable(MasterKeyError):
    """A ciphertext was sealed with a master key that is not configured."""


class MasterKeyInvalid(MasterKeyError):
    """The configured master key is malformed or its key file is unsafe."""


class IntegrityFailure(SecretsError):
    """A ciphertext failed authentication: the row was tampered with or moved."""


class EgressRefused(SecretsError):
    """An outbound call was refused before any byte left: host, address or value not allowed."""


class UpstreamFailed(SecretsError):
    """The upstream could not be reached or broke the exchange."""


class UpstreamTimeout(UpstreamFailed):
    """The upstream did not answer in time."""


class RateLimited(SecretsError):
    """A limit on how often something may be done was reached; ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreUnavailable(SecretsError):
    """The database cannot be reached, or went away during the request.

    A store's transactions are all or nothing, so nothing was half-written; the message says
    when the outcome of a commit is unknown. The REST layer answers 503.
    """
