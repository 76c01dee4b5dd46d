"""``GET /info``: where this deployment's secrets API lives, for front-ends and clients.

Embedded, it is this server; in client mode the user's server answers with the secrets
service's URL (the browser talks to the service directly, so no credential that can manage
secrets ever passes through the user's server); the service answers for itself.
"""

from __future__ import annotations

from .base import Route, SecretsHandler

#: tornado settings key: {"mode": "embedded" | "client" | "service", "api_url": ...}
INFO_KEY = "jupyter_secrets_info"


class InfoHandler(SecretsHandler):
    async def get(self) -> None:
        info = dict(self.settings.get(INFO_KEY) or {"mode": "embedded"})
        info.setdefault("api_url", self.api_url())
        self.write_json(info)


routes: list[Route] = [("info", InfoHandler)]
