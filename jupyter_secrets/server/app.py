"""The ``jupyter_secrets`` server extension: the runtime, the REST API and Jupyter's hooks."""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
from typing import Any

from jupyter_server.auth.identity import IdentityProvider, PasswordIdentityProvider
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.serverapp import ServerApp
from jupyter_server.utils import url_path_join
from tornado.ioloop import IOLoop
from traitlets import default

from .._version import __version__
from ..api import IDENTITY_KEY, ROUTES, UNAVAILABLE_KEY, bind_routes, info
from ..api.info import INFO_KEY
from ..errors import SecretsError
from ..protocol import API_PATH, LOGGER_NAME
from ..runtime import RUNTIME_KEY, SecretsRuntime, build_runtime
from ..services.access import RolePolicy
from ..services.audit import session_path_lookup
from ..settings import SecretsSettings
from .client_mode import ServiceClient, ServiceScrubbingFilter, redact_hook
from .identity import KERNEL_IDENTITY_KEY, JupyterAPIHandler, JupyterIdentity, KernelAwareIdentity
from .kernel_calls import install_kernel_calls
from .kernel_hooks import LocalKernelTokens, install_kernel_hooks
from .leak_guards import LeakGuards

# The default token/password logins: whoever holds the token owns the server process.
_SINGLE_IDENTITY_PROVIDERS = (IdentityProvider, PasswordIdentityProvider)


class SecretsExtensionApp(ExtensionApp, SecretsSettings):
    """Workspace secrets: encrypted store, REST API, egress proxy, kernel tokens, audit."""

    name = "jupyter_secrets"
    version = __version__
    description = __doc__
    load_other_extensions = True

    runtime: SecretsRuntime | None = None
    _guards: LeakGuards | None = None
    _maintenance: asyncio.Task[None] | None = None
    client: ServiceClient | None = None
    _log_filter: logging.Filter | None = None

    @default("log")
    def _default_log(self) -> logging.Logger:
        """Log through the server's own logger, so lines land where the server's do."""
        return logging.getLogger(LOGGER_NAME)

    @property
    def server(self) -> ServerApp:
        assert self.serverapp is not None, "set by jupyter_server before any hook runs"
        return self.serverapp

    def _role_policy(self) -> RolePolicy:
        provider = self.server.identity_provider
        return RolePolicy.build(
            admin_users=self.admin_users,
            single_identity=type(provider) in _SINGLE_IDENTITY_PROVIDERS,
            hub_user=os.environ.get("JUPYTERHUB_USER"),
            users_can_list=self.users_can_list,
            server_user=getpass.getuser(),
            groups=self.groups,
        )

    def initialize_settings(self) -> None:
        """Only Jupyter's hooks live here; the runtime is built by ``build_runtime``."""
        policy = self._role_policy()
        self.settings[IDENTITY_KEY] = JupyterIdentity(policy)
        if self.service_url:
            self._initialize_client_mode(policy)
            return
        try:
            runtime = build_runtime(
                self, log=self.log,
                notebook_path=session_path_lookup(self.server.session_manager),
            )
        except SecretsError as error:
            # Keep serving the API so every caller gets this message instead of a bare 404.
            self.log.error("jupyter-secrets is unavailable: %s", error)
            self.settings[UNAVAILABLE_KEY] = str(error)
            return
        self.runtime = runtime
        runtime.audit.prune_if_due()
        kernel_manager = self.server.kernel_manager
        runtime.live_kernels = lambda: list(kernel_manager.list_kernel_ids())
        install_kernel_hooks(
            kernel_manager,
            LocalKernelTokens(runtime, url_path_join(self.server.connection_url, API_PATH),
                              policy),
            username_of=lambda user: policy.actor(user.username),
            server_user=policy.actor(getpass.getuser()),
        )
        self._guards = LeakGuards.install(self.serverapp, runtime.values,
                                          redact_on_save=self.redact_on_save)
        self.settings[RUNTIME_KEY] = runtime
        self.settings[KERNEL_IDENTITY_KEY] = KernelAwareIdentity(
            self.server.identity_provider, runtime.tokens, lambda kid: kid in kernel_manager
        )
        IOLoop.current().add_callback(self._start_maintenance)
        self.log.info("jupyter-secrets %s: store %s; master keys from %s; %s", __version__,
                      runtime.secrets.store.location, runtime.keys.describe(),
                      policy.describe())

    def _initialize_client_mode(self, policy: RolePolicy) -> None:
        """No store, key or value here: kernels, browsers and saves go to the service."""
        if not self.service_token:
            self.log.error("jupyter-secrets: service_url is set but service_token is not; "
                           "ask the secrets admin for one (jupyter secrets server-token "
                           "create --user %s)", getpass.getuser())
            self.settings[UNAVAILABLE_KEY] = (
                "client mode needs a server token: set JUPYTER_SECRETS_SERVICE_TOKEN.")
            return
        client = ServiceClient(self.service_url, self.service_token)
        self.client = client
        kernel_manager = self.server.kernel_manager
        install_kernel_hooks(
            kernel_manager, client,
            username_of=lambda user: policy.actor(user.username),
            server_user=policy.actor(getpass.getuser()),
        )
        if self.redact_on_save:
            contents: Any = self.server.contents_manager
            contents.register_pre_save_hook(redact_hook(client))
        self._log_filter = ServiceScrubbingFilter(client)
        for target in (logging.getLogger("ServerApp"), *self.server.log.handlers):
            target.addFilter(self._log_filter)
        self.settings[INFO_KEY] = {"mode": "client", "api_url": client.api_url}
        IOLoop.current().add_callback(self._start_heartbeats)
        self.log.info("jupyter-secrets %s: client mode, secrets service %s", __version__,
                      client.api_url)

    def _start_heartbeats(self) -> None:
        if self.client is not None:
            kernels = self.server.kernel_manager
            self._maintenance = asyncio.ensure_future(
                self.client.keep_alive(lambda: list(kernels.list_kernel_ids())))

    def _start_maintenance(self) -> None:
        if self.runtime is not None:
            self._maintenance = asyncio.ensure_future(self.runtime.maintain())

    def initialize_handlers(self) -> None:
        # In client mode this server only says where the service is; the API lives there.
        routes = info.routes if self.service_url else ROUTES
        self.handlers.extend(bind_routes(JupyterAPIHandler, routes))
        if self.runtime is not None and self.kernel_fast_path:
            install_kernel_calls(self.server.web_app, self.server.log)

    async def stop_extension(self) -> None:
        if self._maintenance is not None:
            self._maintenance.cancel()
        if self.client is not None:
            await self.client.aclose()
        if self._log_filter is not None:
            for target in (logging.getLogger("ServerApp"), *self.server.log.handlers):
                target.removeFilter(self._log_filter)
        if self._guards is not None:
            self._guards.uninstall()
        if self.runtime is not None:
            await self.runtime.aclose()
