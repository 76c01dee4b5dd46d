"""Secrets, the caller's identity, the audit log and the API description."""

from __future__ import annotations

import json
from importlib.resources import files

from ..errors import InvalidInput
from ..services.audit import AuditQuery
from ..services.presets import PRESETS
from ..services.secrets import METADATA_FIELDS
from ..validation import (
    DEFAULT_PLACEMENTS,
    normalize_name,
    validate_allowed_hosts,
    validate_placements,
    value_warnings,
)
from .base import Route, SecretsHandler, http_error


def check_destinations(
    handler: SecretsHandler, body: dict[str, object], *,
    allowed_hosts: tuple[str, ...], placements: tuple[str, ...],
) -> None:
    """Widening a secret's hosts or placements is a destination change; narrowing is not."""
    if handler.runtime.settings.destinations_from_browsers or not handler.from_browser:
        return
    try:
        hosts = set(validate_allowed_hosts(body.get("allowed_hosts", list(allowed_hosts))))
        places = set(validate_placements(body.get("placements", list(placements))))
    except InvalidInput:
        return  # refused with its own 422 by the service, before anything is written
    if not hosts <= set(allowed_hosts) or not places <= set(placements):
        handler.require_destination_change("adding an allowed host or a placement")


class SecretsCollectionHandler(SecretsHandler):
    async def get(self) -> None:
        self.require_reader()
        owner = self.get_query_argument("owner", "all")
        kind = self.get_query_argument("kind", "user")
        if owner not in ("me", "all"):
            raise http_error(422, "owner must be 'me' or 'all'.")
        records = await self.call(
            self.runtime.secrets.list,
            owner=self.caller.name if owner == "me" else None,
            kind=None if kind == "all" else kind,
        )
        visible = [r for r in records if self.caller.grant(r.shared_with) is not None]
        self.write_json({"secrets": [r.to_json() for r in visible]})

    async def post(self) -> None:
        self.require_admin()
        body = self.read_json(
            allowed={"name", "value", *METADATA_FIELDS}, required=frozenset({"name", "value"})
        )
        metadata = {k: v for k, v in body.items() if k in METADATA_FIELDS}
        check_destinations(self, body, allowed_hosts=(), placements=DEFAULT_PLACEMENTS)
        record = await self.call(
            self.runtime.secrets.create, self.caller.name, body["name"], body["value"],
            **metadata,
        )
        await self.audit("create", secrets=[record.name])
        self.set_header("Location", self.api_url("secrets", record.name))
        self.write_json({**record.to_json(), "warnings": value_warnings(body["value"])},
                        status=201)

    async def put(self) -> None:
        """Phoenix's batch body: all items applied atomically; ``value: null`` deletes."""
        self.require_admin()
        body = self.read_json(allowed={"secrets"}, required=frozenset({"secrets"}))
        if not isinstance(body["secrets"], list):
            raise http_error(422, 'secrets must be a list of {"key": ..., "value": ...} objects.')
        result = await self.call(self.runtime.secrets.batch, self.caller.name, body["secrets"])
        await self.audit("batch", secrets=[*result.upserted, *result.deleted])
        warnings = {
            normalize_name(item["key"]): value_warnings(item["value"]) for item in body["secrets"]
            if value_warnings(item["value"])
        }
        self.write_json({"data": {"upserted_keys": result.upserted,
                                  "deleted_keys": result.deleted, "warnings": warnings}})


class SecretHandler(SecretsHandler):
    async def get(self, name: str) -> None:
        self.require_reader()
        record = await self.call(self.runtime.secrets.get, name)
        if self.caller.grant(record.shared_with) is None:
            raise http_error(404, f"No secret named {record.name}.")
        self.write_json(record.to_json())

    async def put(self, name: str) -> None:
        self.require_admin()
        body = self.read_json(allowed={"value"}, required=frozenset({"value"}))
        record = await self.call(self.runtime.secrets.replace, self.caller.name, name,
                                 body["value"])
        await self.audit("replace", secrets=[record.name])
        self.write_json({**record.to_json(), "warnings": value_warnings(body["value"])})

    async def patch(self, name: str) -> None:
        self.require_admin()
        body = self.read_json(allowed=set(METADATA_FIELDS))
        if {"allowed_hosts", "placements"} & set(body):
            current = await self.call(self.runtime.secrets.get, name)
            check_destinations(self, body, allowed_hosts=current.allowed_hosts,
                               placements=current.placements)
        record = await self.call(self.runtime.secrets.update_metadata, self.caller.name, name,
                                 body)
        await self.audit("metadata", secrets=[record.name])
        self.write_json(record.to_json())

    async def delete(self, name: str) -> None:
        self.require_admin()
        force = self.get_query_argument("force", "false").lower() in ("1", "true", "yes")
        await self.call(self.runtime.secrets.delete, name, force=force)
        await self.audit("delete", secrets=[normalize_name(name)])
        self.set_status(204)
        self.finish()


class MeHandler(SecretsHandler):
    async def get(self) -> None:
        caller = self.caller
        self.write_json({
            "username": caller.name,
            "name": getattr(self.current_user, "name", None) or caller.name,
            "role": caller.role,
            "can_list": caller.is_admin or self.access.users_can_list,
            "can_write": caller.is_admin and caller.channel == "session",
            "groups": sorted(caller.groups),
            **self.client_hints(),
        })


def openapi_spec() -> dict[str, object]:
    """The contract in ``openapi.json``, with the parts that code defines filled in."""
    spec = json.loads(files(__package__).joinpath("openapi.json").read_text("utf-8"))
    for schema in ("Connection", "ConnectionInput"):
        spec["components"]["schemas"][schema]["properties"]["preset"]["enum"] = list(PRESETS)
    return dict(spec)


class OpenAPIHandler(SecretsHandler):
    async def get(self) -> None:
        spec = openapi_spec()
        spec["servers"] = [{"url": self.api_url()}]
        self.write_json(spec)


class AuditHandler(SecretsHandler):
    """``GET /audit``: who did what with which secret. People with the admin role only."""

    async def get(self) -> None:
        self.require_admin("read the audit log")
        try:
            query = AuditQuery.parse(
                {k: self.get_query_argument(k) for k in self.request.query_arguments}
            )
        except InvalidInput as error:
            raise http_error(422, str(error)) from None
        audit_log = self.runtime.audit
        await audit_log.drain()  # show what happened up to now, not up to the last flush
        events, next_id = await self.call(audit_log.page, query)
        self.write_json({"events": [e.to_json() for e in events], "next": next_id})


routes: list[Route] = [
    ("secrets", SecretsCollectionHandler),
    ("secrets/(?P<name>[^/]+)", SecretHandler),
    ("me", MeHandler),
    ("audit", AuditHandler),
    ("openapi.json", OpenAPIHandler),
]
