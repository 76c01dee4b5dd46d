"""``POST /scan``: find stored values in files under the server root (admins)."""

from __future__ import annotations

from pathlib import Path

from ..errors import InvalidInput, NotFound
from .base import Route, SecretsHandler, http_error


class ScanHandler(SecretsHandler):
    async def post(self) -> None:
        self.require_admin("scan or redact files")
        body = self.read_json(allowed={"path", "redact"})
        relative = body.get("path", "")
        redact = body.get("redact", False)
        if not isinstance(relative, str) or "\x00" in relative or not isinstance(redact, bool):
            raise http_error(422, "path must be a string (relative to the server root, without "
                             "NUL characters) and redact true or false.")
        findings = await self.call(self._scan, relative, redact)
        self.write_json({"redacted": redact, "findings": findings})

    def _scan(self, relative: str, redact: bool) -> list[dict[str, object]]:
        root = Path(self.settings["server_root_dir"]).expanduser().resolve()
        target = (root / relative.lstrip("/")).resolve()
        if target != root and root not in target.parents:
            raise InvalidInput("path must stay inside the server's root directory.")
        if not target.exists():
            raise NotFound(f"Nothing at {relative!r} under the server root.")
        return [
            {"path": str(path.relative_to(root)), "names": redaction.names,
             "count": sum(redaction.found.values())}
            for path, redaction in self.runtime.values.scan_tree(target, redact=redact)
        ]


routes: list[Route] = [("scan", ScanHandler)]
