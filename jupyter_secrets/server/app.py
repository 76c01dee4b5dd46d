"""The ``jupyter_secrets`` server extension."""

from __future__ import annotations

import logging
import os

from jupyter_server.extension.application import ExtensionApp
from traitlets import default

from .._version import __version__
from ..bootstrap import open_service
from ..errors import SecretsError
from ..roles import RolePolicy
from ..settings import SecretsSettings
from .handlers import default_handlers


class SecretsExtensionApp(ExtensionApp, SecretsSettings):
    """Workspace secrets: encrypted store, admin REST API and (later) the egress proxy."""

    name = "jupyter_secrets"
    version = __version__
    description = __doc__
    load_other_extensions = True

    @default("log")
    def _default_log(self) -> logging.Logger:
        """Log through the server's own logger, so lines land where the server's do."""
        return logging.getLogger("ServerApp.jupyter_secrets")

    def initialize_settings(self) -> None:
        try:
            service = open_service(
                store_url=self.store_url, key_file=self.key_file, limits=self.limits(),
                log=self.log,
            )
        except SecretsError as error:
            # Keep serving the API so every caller gets this message instead of a bare 404.
            self.log.error("jupyter-secrets is unavailable: %s", error)
            self.settings["secrets_unavailable"] = str(error)
            return
        policy = RolePolicy.build(
            admin_users=self.admin_users,
            identity_provider=self.serverapp.identity_provider,
            hub_user=os.environ.get("JUPYTERHUB_USER"),
            users_can_list=self.users_can_list,
        )
        self.settings.update(
            secrets_service=service,
            secrets_roles=policy,
            secrets_max_request_bytes=self.max_request_bytes,
        )
        self.log.info("jupyter-secrets %s: store %s; %s", __version__, self.store_url,
                      policy.describe())

    def initialize_handlers(self) -> None:
        self.handlers.extend(default_handlers)

    async def stop_extension(self) -> None:
        service = self.settings.get("secrets_service")
        if service is not None:
            service.store.close()
