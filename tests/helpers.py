"""Shared test helpers."""

from __future__ import annotations

import base64
from urllib.parse import quote, quote_plus

ADMIN = {"Authorization": "token alice-token"}
USER = {"Authorization": "token bob-token"}
ANONYMOUS = {"Authorization": "token not-a-token"}


def canary_forms(canary: str) -> set[str]:
    raw = canary.encode()
    return {
        canary,
        quote(canary, safe=""),
        quote_plus(canary),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }


def assert_no_canary(canary: str, *haystacks: str | bytes, where: str = "") -> None:
    """Fail naming where the canary (or an encoded form of it) was found."""
    forms = canary_forms(canary)
    for index, haystack in enumerate(haystacks):
        text = haystack.decode("latin-1") if isinstance(haystack, bytes) else haystack
        for form in forms:
            assert form not in text, f"canary leaked in {where or 'output'} #{index}"
