"""Connections: admin-defined, named ways to call a service with a secret.

A connection says where calls go (base URL), how the secret is presented (auth scheme) and
which extra headers to add (they may hold ``{{secrets.NAME}}``). Presets fill in what a user
would otherwise look up. The connection's host counts as an allowed host for the secrets the
connection itself names: defining the connection is the admin's decision to send them there.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import replace
from types import EllipsisType
from typing import Any
from urllib.parse import urlsplit

from ..boundary.placeholders import contains_header_unsafe, find_names
from ..errors import AlreadyExists, InvalidInput, NotFound
from ..store import ChangeResult, ConnectionRecord, Transaction
from ..store.records import now_iso
from ..validation import (
    HEADER_NAME_RE,
    normalize_name,
    validate_description,
    validate_header,
    validate_http_url,
    validate_shared_with,
)
from .access import Caller
from .presets import PRESETS
from .secrets import Metadata, PutValue, SecretsService

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_RESERVED_HEADERS = {
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade",
    "te", "trailer", "proxy-authorization", "proxy-connection", "cookie",
}
SCHEMES = {"bearer": (), "header": ("header",), "basic": ("username",), "query": ("param",),
           "none": ()}
MAX_HEADERS = 32
FIELDS = {"name", "preset", "base_url", "secret", "auth", "headers", "description", "value",
          "shared_with", "export_env", "env", "rate_limit", "daily_quota"}
MAX_LIMIT = 1_000_000
MAX_ENV = 16
_ENV_NAME_RE = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")
_ENV_TEMPLATE_RE = re.compile(r"\{(base_url|token)\}")
#: Never set by a connection: ours, and variables that change what code a kernel runs.
_ENV_RESERVED = re.compile(r"JUPYTER_SECRETS_.*|PATH|HOME|LD_.*|PYTHON.*|DYLD_.*|JPY_.*")


def normalize_connection_name(raw: object) -> str:
    if not isinstance(raw, str) or not _NAME_RE.fullmatch(raw.strip().lower()):
        raise InvalidInput(
            "A connection name is 1-64 lower-case letters, digits, '-' or '_', like openai."
        )
    return raw.strip().lower()


def validate_base_url(raw: object) -> str:
    url = validate_http_url(raw, "base_url").rstrip("/")
    parts = urlsplit(url)
    if find_names(url):
        raise InvalidInput("base_url cannot hold {{secrets.NAME}} placeholders; use the auth "
                           "scheme or the connection's headers.")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidInput("base_url must not contain user:password@, a query or a fragment.")
    return url


def validate_auth(raw: object) -> dict[str, str]:
    scheme = raw.get("scheme") if isinstance(raw, Mapping) else None
    if not isinstance(scheme, str) or scheme not in SCHEMES:
        raise InvalidInput(
            'auth must be an object with scheme bearer, header, basic, query or none, like '
            '{"scheme": "bearer"} or {"scheme": "header", "header": "X-Api-Key"}.'
        )
    assert isinstance(raw, Mapping)
    needed = SCHEMES[scheme]
    unknown = set(raw) - {"scheme", *needed}
    if unknown:
        raise InvalidInput(f"auth scheme {scheme} does not take: {', '.join(sorted(unknown))}.")
    auth = {"scheme": scheme}
    for key in needed:
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"auth scheme {scheme} needs {key!r}.")
        value = value.strip()
        if key == "header" and not HEADER_NAME_RE.fullmatch(value):
            raise InvalidInput(f"{value!r} is not a valid header name.")
        if key == "username" and (":" in value or contains_header_unsafe(value)):
            raise InvalidInput("A basic-auth username may not contain ':' or control characters.")
        auth[key] = value
    return auth


def validate_env(raw: object) -> dict[str, str]:
    """Variables a connection exports to kernels: names, and values with ``{base_url}`` and
    ``{token}`` (the kernel's own token) only; never a ``{{secrets.NAME}}``."""
    if not isinstance(raw, Mapping) or len(raw) > MAX_ENV:
        raise InvalidInput(f"env must be an object of at most {MAX_ENV} VARIABLE: template pairs, "
                           'like {"OPENAI_BASE_URL": "{base_url}", "OPENAI_API_KEY": "{token}"}.')
    env: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not _ENV_NAME_RE.fullmatch(name):
            raise InvalidInput(f"{name!r} is not a valid environment variable name.")
        if _ENV_RESERVED.fullmatch(name):
            raise InvalidInput(f"{name} cannot be set by a connection.")
        if (not isinstance(value, str) or len(value) > 2048 or contains_header_unsafe(value)
                or find_names(value) or "{" in _ENV_TEMPLATE_RE.sub("", value)
                or "}" in _ENV_TEMPLATE_RE.sub("", value)):
            raise InvalidInput(f"The value of {name} must be one line of text where only "
                               "{base_url} and {token} are filled in.")
        env[name] = value
    return env


def _limit(raw: object, what: str) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 < raw <= MAX_LIMIT:
        raise InvalidInput(f"{what} must be a whole number of calls from 1 to {MAX_LIMIT}, "
                           "or null for no limit.")
    return raw


def kernel_env(
    connections: Iterable[ConnectionRecord], caller: Caller, proxy_url: str, token: str
) -> dict[str, str]:
    """What a kernel of ``caller`` gets from the connections shared with them that export
    their environment: proxy URLs and the kernel's own token, never a value."""
    env: dict[str, str] = {}
    for record in sorted(connections, key=lambda r: r.name):
        if record.env is None or caller.grant(record.shared_with) is None:
            continue
        base = f"{proxy_url.rstrip('/')}/{record.name}"
        for name, template in record.env.items():
            env[name] = template.replace("{base_url}", base).replace("{token}", token)
    return env


def validate_headers(raw: object) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or len(raw) > MAX_HEADERS:
        raise InvalidInput(f"headers must be an object of at most {MAX_HEADERS} name: value pairs.")
    headers: dict[str, str] = {}
    for name, value in raw.items():
        validate_header(name, value)
        if name.lower() in _RESERVED_HEADERS:
            raise InvalidInput(f"The {name} header is managed by the proxy and cannot be set.")
        headers[name] = value
    return headers


class ConnectionsService:
    """Connection use cases; records are cached in memory for the proxy's hot path.

    The cache holds names and settings only (no value), is emptied by every change made
    through this process at once, and by other processes' changes through the store's change
    feed (the runtime calls :meth:`forget`), so a proxied call reads no database.
    """

    def __init__(self, secrets: SecretsService) -> None:
        self.secrets = secrets
        self.store = secrets.store
        self._cache: dict[str, ConnectionRecord | None] = {}
        self._lock = threading.Lock()

    def forget(self, names: Iterable[str] | None) -> None:
        """Drop cached records (None: all of them)."""
        with self._lock:
            if names is None:
                self._cache.clear()
            else:
                for name in names:
                    self._cache.pop(name, None)

    def list(self) -> list[ConnectionRecord]:
        return self.store.list_connections()

    def get(self, raw_name: object) -> ConnectionRecord:
        name = normalize_connection_name(raw_name)
        record = self.cached(name)
        if record is ...:
            record = self.store.get_connection(name)
            with self._lock:
                self._cache[name] = record
        if record is None:
            raise NotFound(f"No connection named {name}.")
        return record

    def cached(self, raw_name: object) -> ConnectionRecord | EllipsisType | None:
        """The cached record (None: known not to exist), or ``...`` when not cached."""
        with self._lock:
            return self._cache.get(normalize_connection_name(raw_name), ...)

    def create(self, actor: str, body: Mapping[str, Any]) -> ConnectionRecord:
        record, secret = self._build(actor, body, existing=None)
        return self._save(record, create=True, secret=secret)

    def update(self, actor: str, raw_name: object, body: Mapping[str, Any]) -> ConnectionRecord:
        existing = self.get(raw_name)
        if "name" in body and normalize_connection_name(body["name"]) != existing.name:
            raise InvalidInput("A connection cannot be renamed; create a new one instead.")
        record, secret = self._build(actor, {**body, "name": existing.name}, existing=existing)
        return self._save(record, create=False, secret=secret)

    def _save(
        self, record: ConnectionRecord, *, create: bool, secret: PutValue | None
    ) -> ConnectionRecord:
        """Write the connection with its own key (a system secret), atomically."""
        result = ChangeResult()
        now = now_iso()
        with self.store.transaction() as tx:
            existing = tx.get_connection(record.name)
            if create and existing is not None:
                raise AlreadyExists(f"A connection named {record.name} already exists.")
            if not create and existing is None:
                raise NotFound(f"No connection named {record.name}.")
            if secret is not None:
                self.secrets.apply_in(tx, secret, result)
            for name in sorted(record.secrets_used()):
                if tx.get_secret(name) is None:
                    raise NotFound(
                        f"Connection {record.name} uses secret {name}, which does not exist; "
                        "create it first (or send a value to create it with the connection)."
                    )
            saved = replace(
                record, updated_at=now,
                created_at=existing.created_at if existing else now,
                created_by=existing.created_by if existing else record.updated_by,
            )
            tx.put_connection(saved)
            if existing and existing.owns_secret and existing.secret != record.secret:
                self._delete_owned_secret(tx, existing, result)
        self.forget([record.name])
        self.secrets.changed(result)
        return saved

    def delete(self, raw_name: object) -> ConnectionRecord:
        """Delete a connection and the system secret it owns, atomically."""
        name = normalize_connection_name(raw_name)
        result = ChangeResult()
        with self.store.transaction() as tx:
            existing = tx.get_connection(name)
            if existing is None:
                raise NotFound(f"No connection named {name}.")
            tx.delete_connection(name)
            self._delete_owned_secret(tx, existing, result)
        self.forget([name])
        self.secrets.changed(result)
        return existing

    @staticmethod
    def _delete_owned_secret(
        tx: Transaction, connection: ConnectionRecord, result: ChangeResult
    ) -> None:
        if not (connection.owns_secret and connection.secret):
            return
        found = tx.get_secret(connection.secret)
        if found is not None and found[0].kind == "system":
            tx.delete_secret(found[0].id)
            result.deleted.append(connection.secret)

    def _build(
        self, actor: str, body: Mapping[str, Any], existing: ConnectionRecord | None
    ) -> tuple[ConnectionRecord, PutValue | None]:
        unknown = set(body) - FIELDS
        if unknown:
            raise InvalidInput(f"Unknown connection field(s): {', '.join(sorted(unknown))}.")
        name = normalize_connection_name(body.get("name"))
        preset_name = body.get("preset", existing.preset if existing else "http")
        if not isinstance(preset_name, str) or preset_name not in PRESETS:
            raise InvalidInput(f"preset must be one of: {', '.join(PRESETS)}.")
        preset = PRESETS[preset_name]
        base = existing or ConnectionRecord(
            name, preset_name, preset.base_url or "", None, dict(preset.auth),
            dict(preset.headers),
        )
        base_url = validate_base_url(body.get("base_url", base.base_url or preset.base_url))
        auth = validate_auth(body.get("auth", base.auth))
        headers = validate_headers(body.get("headers", base.headers))
        if existing is None:
            headers = {**preset.headers, **headers}
        description = validate_description(body.get("description", base.description))
        shared_with = (validate_shared_with(body["shared_with"]) if "shared_with" in body
                       else base.shared_with)
        env = base.env
        if "export_env" in body:
            if not isinstance(body["export_env"], bool):
                raise InvalidInput("export_env must be true or false.")
            env = (dict(preset.env) if preset.env else None) if body["export_env"] else None
            if body["export_env"] and not preset.env and "env" not in body:
                raise InvalidInput(f"The {preset_name} preset has no environment variables: "
                                   "give them in env.")
        if body.get("env") is not None:
            env = validate_env(body["env"])
        rate_limit = (_limit(body["rate_limit"], "rate_limit") if "rate_limit" in body
                      else base.rate_limit)
        daily_quota = (_limit(body["daily_quota"], "daily_quota") if "daily_quota" in body
                       else base.daily_quota)
        secret_name = base.secret
        owns_secret = base.owns_secret
        put: PutValue | None = None
        if "secret" in body:
            secret_name = None if body["secret"] is None else normalize_name(body["secret"])
            owns_secret = False
        if "value" in body:
            # The key is created (or replaced) as a system secret owned by this connection.
            if not owns_secret or secret_name is None:
                secret_name = secret_name or f"{name.upper().replace('-', '_')}_CONNECTION_KEY"
            owns_secret = True
            seal = self.secrets.sealer_for(body["value"])
            put = PutValue(secret_name, seal, actor, mode="upsert", kind="system",
                           metadata=Metadata(description=f"Key of connection {name}"))
        if auth["scheme"] != "none" and not secret_name:
            raise InvalidInput(
                f"auth scheme {auth['scheme']} needs a secret: name one with 'secret' or "
                "send 'value' to create it with the connection."
            )
        for placeholder in {n for v in headers.values() for n in find_names(v)}:
            normalize_name(placeholder)
        record = ConnectionRecord(
            name=name, preset=preset_name, base_url=base_url, secret=secret_name, auth=auth,
            headers=headers, description=description, owns_secret=owns_secret,
            shared_with=shared_with, env=env, rate_limit=rate_limit, daily_quota=daily_quota,
            updated_by=actor,
        )
        return record, put
