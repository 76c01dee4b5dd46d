"""The ``jupyter_secrets`` server extension."""

from __future__ import annotations

import os

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Int, Set, Unicode, default

from .._version import __version__
from ..bootstrap import default_key_file, default_store_url, open_service
from ..roles import RolePolicy
from ..service import DEFAULT_MAX_BATCH, Limits
from ..validation import DEFAULT_MAX_VALUE_BYTES
from .handlers import default_handlers


class SecretsExtensionApp(ExtensionApp):
    """Workspace secrets: encrypted store, admin REST API and (later) the egress proxy."""

    name = "jupyter_secrets"
    version = __version__
    description = __doc__
    load_other_extensions = True

    store_url = Unicode(
        help="Where secrets are stored, as a URL: sqlite:///path/to/secrets.db. "
        "Defaults to $JUPYTER_SECRETS_STORE_URL, else secrets.db in the Jupyter data dir.",
    ).tag(config=True)

    key_file = Unicode(
        help="Master key file used when $JUPYTER_SECRETS_KEY is unset; created (mode 0600) "
        "when missing and the store is empty. Defaults to $JUPYTER_SECRETS_KEY_FILE, else "
        "jupyter_secrets.key in the Jupyter data dir (outside the database's folder).",
    ).tag(config=True)

    admin_users = Set(
        Unicode(),
        help="User names allowed to create, replace and delete secrets. When empty, the user "
        "of a single-identity (token/password) server, or JUPYTERHUB_USER, is admin.",
    ).tag(config=True)

    users_can_list = Bool(
        True, help="Whether non-admin users may list secret names and metadata."
    ).tag(config=True)

    max_value_bytes = Int(
        DEFAULT_MAX_VALUE_BYTES, help="Largest secret value accepted, in bytes (UTF-8)."
    ).tag(config=True)

    max_batch_size = Int(
        DEFAULT_MAX_BATCH, help="Most secrets accepted in one batch upsert/delete."
    ).tag(config=True)

    max_request_bytes = Int(
        2 * 1024 * 1024, help="Largest request body the secrets API accepts, in bytes."
    ).tag(config=True)

    @default("store_url")
    def _default_store_url(self) -> str:
        return default_store_url()

    @default("key_file")
    def _default_key_file(self) -> str:
        return default_key_file()

    def limits(self) -> Limits:
        return Limits(max_value_bytes=self.max_value_bytes, max_batch=self.max_batch_size)

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
