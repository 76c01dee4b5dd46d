"""``jupyter secrets serve``: the runtime and the REST API in a tornado process of its own.

The same handlers as the Jupyter server extension (``api/``), bound to a plain tornado
base with this service's identity: the admin token, tokens the service issued and, under
JupyterHub, the Hub's login. It reads the same settings as everything else
(``JUPYTER_SECRETS_STORE_URL``, ``JUPYTER_SECRETS_KEY``, ``c.SecretsExtensionApp.*``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from tornado import web
from tornado.httpserver import HTTPServer

from .._version import __version__
from ..api import IDENTITY_KEY, bind_routes
from ..api.info import INFO_KEY
from ..egress.logs import install_log_scrubbing
from ..errors import SecretsError
from ..protocol import ADMIN_TOKEN_ENV, API_PREFIX, ERROR_HEADER, LOGGER_NAME
from ..runtime import RUNTIME_KEY, SecretsRuntime, build_runtime
from ..services.access import RolePolicy
from ..settings import SecretsSettings
from .identity import ServiceIdentity

log = logging.getLogger(LOGGER_NAME)
ALLOW_ORIGINS_KEY = "jupyter_secrets_allow_origins"
MIN_ADMIN_TOKEN = 32
#: Signs the OAuth state cookie under JupyterHub; set it when replicas share one prefix.
COOKIE_SECRET_ENV = "JUPYTER_SECRETS_COOKIE_SECRET"  # noqa: S105 - a variable name
CORS_HEADERS = "Authorization, Content-Type, X-Api-Key, X-XSRFToken"


class ServiceHandler(web.RequestHandler):
    """The tornado base the API handlers are bound to in the service: CORS, no cookies."""

    def set_default_headers(self) -> None:
        origin = self.request.headers.get("Origin")
        if origin and origin in self.settings.get(ALLOW_ORIGINS_KEY, ()):
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Vary", "Origin")
            self.set_header("Access-Control-Expose-Headers",
                            f"{ERROR_HEADER}, Retry-After, Location")

    def prepare(self) -> None:
        """Answer a browser's CORS preflight here; everything else is authenticated later."""
        headers = self.request.headers
        if self.request.method == "OPTIONS" and "Access-Control-Request-Method" in headers:
            if headers.get("Origin") in self.settings.get(ALLOW_ORIGINS_KEY, ()):
                self.set_header("Access-Control-Allow-Methods",
                                "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
                self.set_header("Access-Control-Allow-Headers", CORS_HEADERS)
                self.set_header("Access-Control-Max-Age", "600")
            self.set_status(204)
            self.finish()

    def check_xsrf_cookie(self) -> None:
        """Token authentication only (no cookies), so there is no cross-site form to forge."""


@dataclass
class ServiceConfig:
    ip: str = "127.0.0.1"
    port: int = 8877
    base_url: str = "/"
    admin_token: str | None = None
    allow_origins: Collection[str] = field(default_factory=tuple)

    def __repr__(self) -> str:  # the admin token is a credential
        return (f"ServiceConfig(ip={self.ip!r}, port={self.port}, base_url={self.base_url!r}, "
                f"admin_token={'set' if self.admin_token else 'unset'})")


def normalize_base_url(raw: str) -> str:
    return "/" + raw.strip("/") + "/" if raw.strip("/") else "/"


def check_admin_token(token: str | None, *, required: bool = True) -> str | None:
    if not token:
        if not required:
            return None
        raise SecretsError(
            f"Set {ADMIN_TOKEN_ENV} to a long random token (e.g. $(openssl rand -hex 32)): "
            "it is the admin's credential for this service (under JupyterHub, admins log in "
            "with the Hub instead). There is no default."
        )
    if len(token) < MIN_ADMIN_TOKEN:
        raise SecretsError(f"{ADMIN_TOKEN_ENV} must be at least {MIN_ADMIN_TOKEN} characters.")
    return token


def make_app(
    runtime: SecretsRuntime, identity: Any, config: ServiceConfig, *,
    base: type[web.RequestHandler] = ServiceHandler, extra: list[Any] | None = None,
    settings: dict[str, Any] | None = None,
) -> web.Application:
    base_url = normalize_base_url(config.base_url)
    routes: list[Any] = bind_routes(base, prefix=base_url.rstrip("/") + API_PREFIX)
    return web.Application(
        [*(extra or []), *routes],
        **{RUNTIME_KEY: runtime, IDENTITY_KEY: identity, INFO_KEY: {"mode": "service"},
           ALLOW_ORIGINS_KEY: frozenset(config.allow_origins), "base_url": base_url,
           **(settings or {})},
    )


def _hub_app(runtime: SecretsRuntime, settings: SecretsSettings, config: ServiceConfig,
             admin_token: str | None) -> web.Application:
    """Under JupyterHub (its environment is set): the Hub's login, scopes and groups."""
    from jupyterhub.services.auth import HubOAuth

    from .hub import HUB_AUTH_KEY, HubIdentity, HubServiceHandler, hub_routes

    hub_auth = HubOAuth(api_token=os.environ["JUPYTERHUB_API_TOKEN"], cache_max_age=60)
    identity = HubIdentity(role_policy(settings), runtime.tokens, admin_token=admin_token,
                           hub_auth=hub_auth)
    base_url = normalize_base_url(config.base_url)
    cookie_secret = os.environ.get(COOKIE_SECRET_ENV) or secrets.token_hex(32)
    return make_app(runtime, identity, config, base=HubServiceHandler,
                    extra=hub_routes(base_url),
                    settings={HUB_AUTH_KEY: hub_auth, "cookie_secret": cookie_secret})


def role_policy(settings: SecretsSettings) -> RolePolicy:
    return RolePolicy.build(admin_users=settings.admin_users, single_identity=False,
                            hub_user=None, users_can_list=settings.users_can_list,
                            server_user="", groups=settings.groups)


async def serve(settings: SecretsSettings, config: ServiceConfig) -> None:
    """Run until SIGTERM or SIGINT, then finish what is queued and stop."""
    under_hub = bool(os.environ.get("JUPYTERHUB_API_TOKEN"))
    admin_token = check_admin_token(config.admin_token, required=not under_hub)
    runtime = build_runtime(settings, log=log)
    uninstall = install_log_scrubbing(runtime.values)
    if under_hub:
        app = _hub_app(runtime, settings, config, admin_token)
    else:
        identity = ServiceIdentity(role_policy(settings), runtime.tokens,
                                   admin_token=admin_token)
        app = make_app(runtime, identity, config)
    server = HTTPServer(app, xheaders=True)
    server.listen(config.port, config.ip)
    maintenance = asyncio.ensure_future(runtime.maintain())
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    log.info("jupyter-secrets service %s on http://%s:%d%s (store %s, keys from %s, pid %d)",
             __version__, config.ip, config.port, normalize_base_url(config.base_url),
             runtime.secrets.store.location, runtime.keys.describe(), os.getpid())
    try:
        await stopped.wait()
    finally:
        server.stop()
        maintenance.cancel()
        await runtime.aclose()
        uninstall()
        log.info("jupyter-secrets service stopped")
