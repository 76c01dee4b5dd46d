"""Framework-free building blocks of the egress proxy.

This package is one of the two places allowed to hold secret plaintext (the other is
``jupyter_secrets.crypto``): it fills ``{{secrets.NAME}}`` placeholders, decides which
destinations a value may travel to, and scrubs echoes of injected values out of responses.
Nothing here knows about tornado, the store or HTTP clients, so the value boundary can be
reviewed (and unit-tested) in isolation.
"""

from __future__ import annotations

from .hosts import (
    address_refusal,
    check_address,
    explicitly_allowed,
    host_allowed,
    normalize_host,
    normalize_host_pattern,
    resolve_pinned,
)
from .placeholders import (
    PLACEHOLDER_RE,
    UnknownPlaceholder,
    contains_header_unsafe,
    find_names,
    substitute,
)
from .scrub import Scrubber, ScrubStream

__all__ = [
    "PLACEHOLDER_RE",
    "ScrubStream",
    "Scrubber",
    "UnknownPlaceholder",
    "address_refusal",
    "check_address",
    "contains_header_unsafe",
    "explicitly_allowed",
    "find_names",
    "host_allowed",
    "normalize_host",
    "normalize_host_pattern",
    "resolve_pinned",
    "substitute",
]
