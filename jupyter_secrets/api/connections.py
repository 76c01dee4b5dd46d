"""Connections: admin-managed, from a person's session only."""

from __future__ import annotations

from ..services.audit import connection_fields
from ..services.connections import FIELDS
from ..services.presets import PRESETS
from .base import Route, SecretsHandler, http_error

#: What says where a connection's key goes (``destinations_from_browsers``).
DESTINATION_FIELDS = ("base_url", "auth", "headers", "secret", "preset")


class ConnectionsHandler(SecretsHandler):
    def require_connection_admin(self) -> None:
        self.require_admin("create, change or delete connections")


class ConnectionsCollectionHandler(ConnectionsHandler):
    async def get(self) -> None:
        self.require_reader()
        records = await self.call(self.runtime.connections.list)
        visible = [r for r in records if self.caller.grant(r.shared_with) is not None]
        self.write_json({"connections": [r.to_json() for r in visible]})

    async def post(self) -> None:
        self.require_connection_admin()
        body = self.read_json(allowed=FIELDS, required=frozenset({"name"}))
        self.require_destination_change("creating a connection")
        record = await self.call(self.runtime.connections.create, self.caller.name, body)
        await self.audit("connection_create", **connection_fields(record))
        self.set_header("Location", self.api_url("connections", record.name))
        self.write_json(record.to_json(), status=201)


class ConnectionHandler(ConnectionsHandler):
    async def get(self, name: str) -> None:
        self.require_reader()
        record = await self.call(self.runtime.connections.get, name)
        if self.caller.grant(record.shared_with) is None:
            raise http_error(404, f"No connection named {record.name}.")
        self.write_json(record.to_json())

    async def patch(self, name: str) -> None:
        self.require_connection_admin()
        body = self.read_json(allowed=FIELDS)
        if not self.runtime.settings.destinations_from_browsers and self.from_browser:
            current = (await self.call(self.runtime.connections.get, name)).to_json()
            if any(field in body and body[field] != current[field]
                   for field in DESTINATION_FIELDS):
                self.require_destination_change("changing a connection's URL, auth, headers "
                                                "or secret")
        record = await self.call(self.runtime.connections.update, self.caller.name, name, body)
        await self.audit("connection_update", **connection_fields(record))
        self.write_json(record.to_json())

    put = patch

    async def delete(self, name: str) -> None:
        self.require_connection_admin()
        record = await self.call(self.runtime.connections.delete, name)
        await self.audit("connection_delete", **connection_fields(record))
        self.set_status(204)
        self.finish()


class PresetsHandler(SecretsHandler):
    """``GET /presets``: what each preset fills in, so front-ends can offer them."""

    async def get(self) -> None:
        self.require_reader()
        self.write_json({"presets": [p.to_json(name) for name, p in PRESETS.items()]})


class EnvHandler(SecretsHandler):
    """``GET /env``: the provider variables this caller's kernels get, names only."""

    async def get(self) -> None:
        self.require_reader()
        records = await self.call(self.runtime.connections.list)
        variables = [
            {"name": name, "connection": record.name}
            for record in sorted(records, key=lambda r: r.name)
            if record.env is not None and self.caller.grant(record.shared_with) is not None
            for name in record.env
        ]
        self.write_json({"variables": variables})


routes: list[Route] = [
    ("env", EnvHandler),
    ("presets", PresetsHandler),
    ("connections", ConnectionsCollectionHandler),
    ("connections/(?P<name>[^/]+)", ConnectionHandler),
]
