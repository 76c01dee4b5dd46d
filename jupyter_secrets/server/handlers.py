"""REST handlers under ``/api/secrets/v1``: parse, call the service, serialize."""

from __future__ import annotations

import json
from importlib.resources import files

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web

from ..audit import AuditQuery
from ..errors import InvalidInput
from ..validation import normalize_name
from .base import SecretsAPIHandler, http_error

API_PREFIX = "/api/secrets/v1"
_NAME = r"(?P<name>[^/]+)"


class SecretsCollectionHandler(SecretsAPIHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.require_reader()
        owner = self.get_query_argument("owner", "all")
        kind = self.get_query_argument("kind", "user")
        if owner not in ("me", "all"):
            raise http_error(422, "owner must be 'me' or 'all'.")
        records = await self.call(
            self.service.list,
            owner=self.username if owner == "me" else None,
            kind=None if kind == "all" else kind,
        )
        self.write_json({"secrets": [r.to_json() for r in records]})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.require_admin()
        body = self.read_json(
            allowed={"name", "value", "description", "allowed_hosts"},
            required=frozenset({"name", "value"}),
        )
        record = await self.call(
            self.service.create,
            self.username,
            body["name"],
            body["value"],
            description=body.get("description"),
            allowed_hosts=body.get("allowed_hosts"),
        )
        self.audit("create", secrets=[record.name])
        self.set_header("Location", url_path_join(self.base_url, API_PREFIX, "secrets",
                                                  record.name))
        self.write_json(record.to_json(), status=201)

    @web.authenticated
    @authorized
    async def put(self) -> None:
        """Phoenix's batch body: all items applied atomically; ``value: null`` deletes."""
        self.require_admin()
        body = self.read_json(allowed={"secrets"}, required=frozenset({"secrets"}))
        if not isinstance(body["secrets"], list):
            raise http_error(422, 'secrets must be a list of {"key": ..., "value": ...} objects.')
        result = await self.call(self.service.batch, self.username, body["secrets"])
        self.audit("batch", secrets=[*result.upserted, *result.deleted])
        self.write_json(
            {"data": {"upserted_keys": result.upserted, "deleted_keys": result.deleted}}
        )


class SecretHandler(SecretsAPIHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.require_reader()
        record = await self.call(self.service.get, name)
        self.write_json(record.to_json())

    @web.authenticated
    @authorized
    async def put(self, name: str) -> None:
        self.require_admin()
        body = self.read_json(allowed={"value"}, required=frozenset({"value"}))
        record = await self.call(self.service.replace, self.username, name, body["value"])
        self.audit("replace", secrets=[record.name])
        self.write_json(record.to_json())

    @web.authenticated
    @authorized
    async def patch(self, name: str) -> None:
        self.require_admin()
        body = self.read_json(allowed={"description", "allowed_hosts"})
        if not body:
            raise http_error(422, "Nothing to change: send description and/or allowed_hosts.")
        if "allowed_hosts" in body:
            self.require_session("change where a secret may be sent")
        record = await self.call(self.service.update_metadata, self.username, name, body)
        self.audit("metadata", secrets=[record.name])
        self.write_json(record.to_json())

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        self.require_admin()
        force = self.get_query_argument("force", "false").lower() in ("1", "true", "yes")
        await self.call(self.service.delete, self.username, name, force=force)
        self.audit("delete", secrets=[normalize_name(name)])
        self.set_status(204)
        self.finish()


class MeHandler(SecretsAPIHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        role = self.role
        self.write_json({
            "username": self.username,
            "name": self.current_user.name,
            "role": role,
            "can_list": role == "admin" or self.roles.users_can_list,
            "can_write": role == "admin",
        })


class OpenAPIHandler(SecretsAPIHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        spec = json.loads(files(__package__).joinpath("openapi.json").read_text("utf-8"))
        spec["servers"] = [{"url": url_path_join(self.base_url, API_PREFIX)}]
        self.write_json(spec)


class AuditHandler(SecretsAPIHandler):
    """``GET /audit``: who did what with which secret. People with the admin role only."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        if self.role != "admin":
            raise web.HTTPError(403, "Only secrets admins can read the audit log.")
        self.require_session("read the audit log")
        try:
            query = AuditQuery.parse(
                {k: self.get_query_argument(k) for k in self.request.query_arguments}
            )
        except InvalidInput as error:
            raise http_error(422, str(error)) from None
        audit_log = self.settings["secrets_audit"]
        await audit_log.drain()  # show what happened up to now, not up to the last flush
        events, next_id = await self.call(audit_log.page, query)
        self.write_json({"events": [e.to_json() for e in events], "next": next_id})


default_handlers = [
    (f"{API_PREFIX}/secrets", SecretsCollectionHandler),
    (f"{API_PREFIX}/secrets/{_NAME}", SecretHandler),
    (f"{API_PREFIX}/me", MeHandler),
    (f"{API_PREFIX}/audit", AuditHandler),
    (f"{API_PREFIX}/openapi.json", OpenAPIHandler),
]
