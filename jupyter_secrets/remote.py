"""The admin's CLI against a secrets service: the same commands, over its REST API.

``jupyter secrets --service-url URL set NAME`` authenticates with the service's admin token
from ``JUPYTER_SECRETS_ADMIN_TOKEN`` (never from argv) and sends the value straight to the
service; nothing is stored or written on the admin's machine. The service audits the calls.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from .errors import SecretsError
from .protocol import ADMIN_TOKEN_ENV, API_PATH
from .store.records import AuditFilter, AuditRecord, SecretRecord
from .validation import validate_shared_with


def _record(payload: Mapping[str, Any]) -> SecretRecord:
    return SecretRecord(
        id="", name=payload["name"], kind=payload["kind"], description=payload["description"],
        owner=payload["owner"], created_at=payload["created_at"],
        updated_at=payload["updated_at"], updated_by=payload["updated_by"],
        version=payload["version"], allowed_hosts=tuple(payload["allowed_hosts"]),
        placements=tuple(payload["placements"]), key_id=payload["key_id"],
        shared_with=validate_shared_with(payload.get("shared_with")),
        last_used_at=payload.get("last_used_at"), use_count=payload.get("use_count") or 0,
        used_by=tuple(payload.get("used_by") or ()),
    )


def _audit(payload: Mapping[str, Any]) -> AuditRecord:
    fields = dict(payload)
    fields["secrets"] = tuple(fields.get("secrets") or ())
    return AuditRecord(**fields)


class RemoteAdmin:
    """What the CLI's commands need from a store, served by a secrets service."""

    def __init__(self, service_url: str, token: str | None = None, timeout: float = 60) -> None:
        token = token or os.environ.get(ADMIN_TOKEN_ENV)
        if not token:
            raise SecretsError(
                f"Set {ADMIN_TOKEN_ENV} to the service's admin token to manage secrets at "
                f"{service_url} (it is never taken from the command line)."
            )
        self.url = service_url.rstrip("/") + "/" + API_PATH + "/"
        self._client = httpx.Client(base_url=self.url, timeout=timeout, trust_env=False,
                                    headers={"Authorization": f"token {token}"})

    def __repr__(self) -> str:
        return f"RemoteAdmin({self.url!r})"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise SecretsError(f"Could not reach the secrets service at {self.url}: "
                               f"{type(error).__name__}.") from None
        if response.status_code == 204:
            return None
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if response.is_error:
            message = payload.get("message") if isinstance(payload, dict) else None
            raise SecretsError(message or f"The service answered {response.status_code}.")
        return payload

    @staticmethod
    def _path(name: str) -> str:
        return f"secrets/{quote(name, safe='')}"

    def list_secrets(self, kind: str | None) -> list[SecretRecord]:
        payload = self._call("GET", "secrets", params={"kind": kind or "all"})
        return [_record(s) for s in payload["secrets"]]

    def upsert(self, name: str, value: str, fields: Mapping[str, Any]) -> SecretRecord:
        """Create, or replace the value and then the metadata given."""
        metadata = {k: v for k, v in fields.items() if v is not None}
        try:
            return _record(self._call("POST", "secrets", json={"name": name, "value": value,
                                                                **metadata}))
        except SecretsError as error:
            if "already exists" not in str(error):
                raise
        record = _record(self._call("PUT", self._path(name), json={"value": value}))
        return self.update(record.name, metadata) if metadata else record

    def update(self, name: str, fields: Mapping[str, Any]) -> SecretRecord:
        return _record(self._call("PATCH", self._path(name), json=dict(fields)))

    def delete(self, name: str) -> str:
        record = _record(self._call("GET", self._path(name)))
        self._call("DELETE", self._path(record.name))
        return record.name

    def audit(self, query: AuditFilter) -> tuple[list[AuditRecord], int | None]:
        params = {"secret": query.secret, "user": query.user, "since": query.since,
                  "action": query.action, "limit": str(query.limit),
                  "before": str(query.before_id) if query.before_id else None}
        payload = self._call("GET", "audit",
                             params={k: v for k, v in params.items() if v is not None})
        return [_audit(e) for e in payload["events"]], payload["next"]

    def create_run_token(self, name: str, ttl: str, user: str) -> tuple[str, dict[str, Any]]:
        body = self._call("POST", "tokens", json={"name": name, "ttl": ttl, "user": user})
        token = body.pop("token")
        return str(token), body

    def list_run_tokens(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "tokens")["tokens"])

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        tokens = [t for t in self.list_run_tokens() if t["id"].startswith(token_id)]
        self._call("DELETE", f"tokens/{quote(token_id, safe='')}")
        return tokens[0] if tokens else {"id": token_id, "name": None, "kind": "run",
                                          "username": "?"}

