"""``{{secrets.NAME}}`` templates in ad-hoc outbound requests.

Notebook code writes ``{"Authorization": "Bearer {{secrets.EXAMPLE_TOKEN}}"}``; the server
fills the value in just before the request leaves, so the kernel only ever holds the name.
Substitution is a single pass: a value that itself contains ``{{secrets.X}}`` is inserted
literally and never expanded, so one secret cannot be used to read another.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..errors import InvalidInput

__all__ = [
    "PLACEHOLDER_RE",
    "UnknownPlaceholder",
    "contains_header_unsafe",
    "find_names",
    "substitute",
]

# Spaces and tabs are allowed inside the braces (``{{ secrets.NAME }}``), newlines are not:
# a placeholder spread over lines is more likely a mistake than a template.
PLACEHOLDER_RE = re.compile(r"\{\{[ \t]*secrets\.([A-Za-z_][A-Za-z0-9_]*)[ \t]*\}\}")

_HEADER_UNSAFE = frozenset("\r\n\0")


class UnknownPlaceholder(InvalidInput, KeyError):
    """A placeholder names a secret that does not exist (or the caller may not use).

    A ``KeyError`` for callers that treat it as a failed lookup, and an ``InvalidInput`` so
    the REST layer answers 400 with the message. The message holds the name only.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"Unknown secret {name!r} in placeholder {{{{secrets.{name}}}}}: create a "
            f"secret named {name} or fix the spelling of the placeholder."
        )

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message, adding quotes and escapes.
        return str(self.args[0])


def find_names(text: str) -> set[str]:
    """Upper-cased names of every placeholder in ``text`` (names are case-insensitive)."""
    return {match.group(1).upper() for match in PLACEHOLDER_RE.finditer(text)}


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace each placeholder with ``values[NAME]`` (keys are upper-case names).

    Raises :class:`UnknownPlaceholder` for the first name (in text order) with no value.
    """

    def fill(match: re.Match[str]) -> str:
        name = match.group(1).upper()
        try:
            return values[name]
        except KeyError:
            raise UnknownPlaceholder(name) from None

    return PLACEHOLDER_RE.sub(fill, text)


def contains_header_unsafe(value: str) -> bool:
    """True if ``value`` holds CR, LF or NUL, which would split or truncate an HTTP header."""
    return not _HEADER_UNSAFE.isdisjoint(value)
