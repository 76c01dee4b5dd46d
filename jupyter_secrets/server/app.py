"""The ``jupyter_secrets`` server extension."""

from __future__ import annotations

import os

from jupyter_server.extension.application import ExtensionApp

from .._version import __version__
from ..bootstrap import open_service
from ..roles import RolePolicy
from ..settings import SecretsSettings
from .handlers import default_handlers


class SecretsExtensionApp(ExtensionApp, SecretsSettings):
    """Workspace secrets: encrypted store, admin REST API and (later) the egress proxy."""

    name = "jupyter_secrets"
    version = __version__
    description = __doc__
    load_other_extensions = True

    def initialize_settings(self) -> None:
        service = open_service(
            store_url=self.store_url, key_file=self.key_file, limits=self.limits(), log=self.log
        )
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
