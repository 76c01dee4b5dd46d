"""The one validator every entry point uses (REST, batch, CLI, widgets).

Names are normalised env-var style, so ``openai-api key`` and ``OPENAI_API_KEY`` are the
same secret everywhere. Values are kept byte for byte: whitespace can be part of a key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from .boundary.hosts import normalize_host, normalize_host_pattern
from .boundary.placeholders import PLACEHOLDER_RE, contains_header_unsafe, find_names
from .boundary.sharing import SharedWith
from .crypto import Plaintext
from .errors import InvalidInput, TooLarge

PLACEMENTS = ("header", "query", "path", "body")
DEFAULT_PLACEMENTS = ("header",)
NAME_MAX_LENGTH = 128
DESCRIPTION_MAX_LENGTH = 1024
MAX_ALLOWED_HOSTS = 64
DEFAULT_MAX_VALUE_BYTES = 64 * 1024
MAX_HEADER_VALUE = 8192
_NAME_RE = re.compile(r"[A-Z_][A-Z0-9_]*")
HEADER_NAME_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}")
_SEPARATORS = re.compile(r"[\s-]+")


def normalize_name(raw: object) -> str:
    """Trim, turn spaces and dashes into ``_``, upper-case, then check the shape."""
    if not isinstance(raw, str):
        raise InvalidInput("A secret name must be a string like OPENAI_API_KEY.")
    name = _SEPARATORS.sub("_", raw.strip())
    if name.isascii():
        name = name.upper()  # only ASCII: "ß".upper() would quietly become "SS"
    if not name:
        raise InvalidInput("A secret name must not be empty; use something like OPENAI_API_KEY.")
    if len(name) > NAME_MAX_LENGTH:
        raise InvalidInput(f"A secret name may be at most {NAME_MAX_LENGTH} characters long.")
    if not _NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"{name!r} is not a valid secret name: use letters, digits and underscores, "
            "not starting with a digit (like OPENAI_API_KEY)."
        )
    return name


def validate_value(raw: object, *, max_bytes: int = DEFAULT_MAX_VALUE_BYTES) -> Plaintext:
    """Box a new value after checking it is non-empty text within the size limit.

    The messages say what is wrong with the value without ever quoting it.
    """
    if raw is None:
        raise InvalidInput("A value is required; to delete a secret use DELETE.")
    if not isinstance(raw, str):
        raise InvalidInput("A secret value must be a JSON string.")
    if raw == "":
        raise InvalidInput("A secret value must not be empty.")
    if raw.isspace():
        raise InvalidInput("A secret value must not be only whitespace.")
    value = Plaintext(raw)
    if value.byte_length > max_bytes:
        raise TooLarge(
            f"A secret value may be at most {max_bytes} bytes (got {value.byte_length})."
        )
    return value


def value_warnings(raw: object) -> list[str]:
    """What a person should double-check about a new value (never quoting it)."""
    if not isinstance(raw, str) or not raw or raw.isspace():
        return []
    if raw != raw.strip():
        return ["The value starts or ends with whitespace (a space, tab or line break). It is "
                "kept exactly as sent; if that was a copy-paste accident, replace the value."]
    return []


def validate_description(raw: object) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise InvalidInput("A description must be a string.")
    if len(raw) > DESCRIPTION_MAX_LENGTH:
        raise InvalidInput(f"A description may be at most {DESCRIPTION_MAX_LENGTH} characters.")
    return raw.strip()


def validate_allowed_hosts(raw: object) -> tuple[str, ...]:
    """Normalise the hosts a secret may be sent to (``api.example.com``, ``*.example.com``)."""
    if raw is None:
        return ()
    if isinstance(raw, str) or not isinstance(raw, Iterable):
        raise InvalidInput('allowed_hosts must be a list of host names, like ["api.openai.com"].')
    items = list(raw)
    if len(items) > MAX_ALLOWED_HOSTS:
        raise InvalidInput(f"A secret may list at most {MAX_ALLOWED_HOSTS} allowed hosts.")
    hosts: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidInput("Each allowed host must be a string, like api.openai.com.")
        try:
            host = normalize_host_pattern(item)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        if host not in hosts:
            hosts.append(host)
    return tuple(hosts)


def validate_placements(raw: object) -> tuple[str, ...]:
    """Where in an outbound request a value may be put, in a fixed order; at least one."""
    if isinstance(raw, str) or not isinstance(raw, Iterable):
        raise InvalidInput(
            f'placements must be a list drawn from {", ".join(PLACEMENTS)}, like ["header"].'
        )
    items = list(raw)
    unknown = [p for p in items if p not in PLACEMENTS]
    if unknown:
        raise InvalidInput(
            f"Unknown placement(s) {', '.join(map(repr, unknown))}: use {', '.join(PLACEMENTS)}."
        )
    if not items:
        raise InvalidInput('placements may not be empty: a value needs a place, like ["header"].')
    return tuple(p for p in PLACEMENTS if p in items)


def validate_http_url(raw: object, what: str = "url") -> str:
    """An http(s) URL with a valid host and port. A placeholder in the host is left for the
    egress check to refuse with its own message."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput(f"{what} is required, like https://api.example.com/v1.")
    url = raw.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as error:
        raise InvalidInput(f"{what} is not a valid URL ({error}).") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{what} must be an http(s) URL with a host, like "
                           "https://api.example.com/v1.")
    if not find_names(parts.netloc):
        try:
            normalize_host(parts.hostname)
        except ValueError as error:
            raise InvalidInput(f"{what} has an invalid host: {error}") from None
    return url


def validate_header(name: object, value: object) -> tuple[str, str]:
    """A header an outbound request may carry; its value may hold placeholders."""
    if not isinstance(name, str) or not HEADER_NAME_RE.fullmatch(name):
        raise InvalidInput(f"{name!r} is not a valid header name.")
    if not isinstance(value, str) or contains_header_unsafe(value) or len(value) > MAX_HEADER_VALUE:
        raise InvalidInput(
            f"Header {name} must be a single-line string of at most {MAX_HEADER_VALUE} characters."
        )
    try:
        PLACEHOLDER_RE.sub("", value).encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"Header {name} may hold only Latin-1 characters (HTTP headers cannot carry "
            "others); send such text in the body."
        ) from None
    return name, value


MAX_SHARED = 256
_PRINCIPAL_RE = re.compile(r"[^\x00-\x1f\x7f,]{1,256}")


def validate_shared_with(raw: object) -> SharedWith | None:
    """Who may use it besides admins: None (everyone), or listed users and groups.

    Accepts ``"everyone"`` or null; ``{"users": [...], "groups": [...]}``; or a list like
    ``["user:bob", "group:analysts"]`` (the CLI's ``--share-with``).
    """
    if raw is None or raw == "everyone" or raw == ["everyone"]:
        return None
    users: list[object] = []
    groups: list[object] = []
    if isinstance(raw, Mapping) and set(raw) <= {"users", "groups"}:
        users, groups = list(raw.get("users") or []), list(raw.get("groups") or [])
    elif isinstance(raw, list) and all(isinstance(i, str) and ":" in i for i in raw):
        for item in raw:
            kind, _, name = str(item).partition(":")
            if kind not in ("user", "group"):
                break
            (users if kind == "user" else groups).append(name)
        else:
            raw = None
    if raw is not None and not (isinstance(raw, Mapping) and set(raw) <= {"users", "groups"}):
        raise InvalidInput('shared_with must be "everyone" or {"users": [...], "groups": '
                           '[...]} (or a list like ["user:bob", "group:analysts"]).')
    if len(users) + len(groups) > MAX_SHARED:
        raise InvalidInput(f"Share with at most {MAX_SHARED} users and groups.")
    for item in (*users, *groups):
        if not isinstance(item, str) or not _PRINCIPAL_RE.fullmatch(item):
            raise InvalidInput("User and group names in shared_with must be non-empty strings "
                               "without commas or control characters.")
    if not users and not groups:
        raise InvalidInput('shared_with lists nobody; use "everyone" to share with all users.')
    return SharedWith(tuple(sorted(set(users))), tuple(sorted(set(groups))))  # type: ignore[arg-type]

