"""``POST /scan``: find stored values in files under the server root (admins)."""

from __future__ import annotations

from pathlib import Path

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..egress.redaction import ValueIndex
from ..errors import InvalidInput, NotFound
from .base import SecretsAPIHandler, http_error


class ScanHandler(SecretsAPIHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.require_admin()
        self.require_session("scan or redact files")
        body = self.read_json(allowed={"path", "redact"})
        relative = body.get("path", "")
        redact = body.get("redact", False)
        if not isinstance(relative, str) or not isinstance(redact, bool):
            raise http_error(422, "path must be a string (relative to the server root) and "
                             "redact true or false.")
        findings = await self.call(self._scan, relative, redact)
        self.write_json({"redacted": redact, "findings": findings})

    def _scan(self, relative: str, redact: bool) -> list[dict[str, object]]:
        root = Path(self.settings["server_root_dir"]).resolve()
        target = (root / relative.lstrip("/")).resolve()
        if target != root and root not in target.parents:
            raise InvalidInput("path must stay inside the server's root directory.")
        if not target.exists():
            raise NotFound(f"Nothing at {relative!r} under the server root.")
        index: ValueIndex = self.settings["secrets_value_index"]
        return [
            {"path": str(path.relative_to(root)), "names": redaction.names,
             "count": sum(redaction.found.values())}
            for path, redaction in index.scan_tree(target, redact=redact)
        ]
