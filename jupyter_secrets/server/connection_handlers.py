"""REST handlers for connections: admin-managed, from a person's session only."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web

from ..audit import connection_fields
from ..connections import FIELDS, ConnectionsService
from .base import SecretsAPIHandler

API_PREFIX = "/api/secrets/v1"


class ConnectionsAPIHandler(SecretsAPIHandler):
    @property
    def connections(self) -> ConnectionsService:
        return self.settings["secrets_connections"]

    def require_connection_admin(self) -> None:
        self.require_admin()
        self.require_session("create, change or delete connections")


class ConnectionsCollectionHandler(ConnectionsAPIHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.require_reader()
        records = await self.call(self.connections.list)
        self.write_json({"connections": [r.to_json() for r in records]})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.require_connection_admin()
        body = self.read_json(allowed=FIELDS, required=frozenset({"name"}))
        record = await self.call(self.connections.create, self.username, body)
        self.audit("connection_create", **connection_fields(record))
        self.set_header("Location", url_path_join(self.base_url, API_PREFIX, "connections",
                                                  record.name))
        self.write_json(record.to_json(), status=201)


class ConnectionHandler(ConnectionsAPIHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.require_reader()
        record = await self.call(self.connections.get, name)
        self.write_json(record.to_json())

    @web.authenticated
    @authorized
    async def patch(self, name: str) -> None:
        self.require_connection_admin()
        body = self.read_json(allowed=FIELDS)
        record = await self.call(self.connections.update, self.username, name, body)
        self.audit("connection_update", **connection_fields(record))
        self.write_json(record.to_json())

    put = patch

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        self.require_connection_admin()
        record = await self.call(self.connections.delete, name)
        self.audit("connection_delete", **connection_fields(record))
        self.set_status(204)
        self.finish()
