"""The ``jupyter_secrets`` server extension."""

from __future__ import annotations

import getpass
import logging
import os
from collections.abc import Callable

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from traitlets import default

from .._version import __version__
from ..audit import AuditLog, session_path_lookup
from ..bootstrap import open_service
from ..connections import ConnectionsService
from ..egress.outbound import Egress
from ..egress.redaction import ValueIndex
from ..egress.transport import build_client
from ..errors import SecretsError
from ..roles import RolePolicy
from ..settings import SecretsSettings
from .connection_handlers import ConnectionHandler, ConnectionsCollectionHandler
from .handlers import default_handlers
from .identity import KernelAwareIdentity
from .kernel_tokens import KernelTokenRegistry, install_kernel_hooks
from .leak_guards import install_leak_guards
from .proxy_handlers import ProxyHandler, RequestHandler
from .scan_handlers import ScanHandler

API = "/api/secrets/v1"
connection_handlers = [
    (f"{API}/connections", ConnectionsCollectionHandler),
    (f"{API}/connections/(?P<name>[^/]+)", ConnectionHandler),
]
egress_handlers = [
    (f"{API}/proxy/(?P<connection>[^/]+)/?(?P<path>.*)", ProxyHandler),
    (f"{API}/request", RequestHandler),
    (f"{API}/scan", ScanHandler),
]


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
        kernel_manager = self.serverapp.kernel_manager
        registry = KernelTokenRegistry()
        install_kernel_hooks(
            kernel_manager,
            registry,
            api_url=url_path_join(self.serverapp.connection_url, "api/secrets/v1"),
            username_of=lambda user: policy.actor(user.username),
            server_user=policy.actor(getpass.getuser()),
        )
        client = build_client(connect_timeout=self.connect_timeout, idle_timeout=self.idle_timeout)
        audit_log = AuditLog(
            service.store, retention_days=self.audit_retention_days,
            notebook_path=session_path_lookup(self.serverapp.session_manager),
        )
        audit_log.prune_if_due()
        value_index = ValueIndex(service)
        self._remove_log_filters = install_leak_guards(
            self.serverapp, value_index, redact_on_save=self.redact_on_save
        )
        self.settings.update(
            secrets_service=service,
            secrets_connections=ConnectionsService(service),
            secrets_egress=Egress(service, client, max_redirects=self.max_redirects),
            secrets_roles=policy,
            secrets_identity=KernelAwareIdentity(
                self.serverapp.identity_provider, registry, lambda kid: kid in kernel_manager
            ),
            secrets_kernel_tokens=registry,
            secrets_audit=audit_log,
            secrets_value_index=value_index,
            secrets_max_request_bytes=self.max_request_bytes,
            secrets_max_proxy_body_bytes=self.max_proxy_body_bytes,
        )
        self.log.info("jupyter-secrets %s: store %s; %s", __version__, self.store_url,
                      policy.describe())

    def initialize_handlers(self) -> None:
        self.handlers.extend([*default_handlers, *connection_handlers, *egress_handlers])

    _remove_log_filters: Callable[[], None] | None = None

    async def stop_extension(self) -> None:
        if self._remove_log_filters is not None:
            self._remove_log_filters()
        egress = self.settings.get("secrets_egress")
        if egress is not None:
            await egress.client.aclose()
            egress.usage.flush()
        audit_log = self.settings.get("secrets_audit")
        if audit_log is not None:
            await audit_log.aclose()
        service = self.settings.get("secrets_service")
        if service is not None:
            service.store.close()
