"""The secrets service as a JupyterHub service: the Hub's users, groups and scopes.

Browsers log in with the Hub (OAuth; the cookie lives on the service's prefix and writes
need the XSRF token, which ``GET me`` hands to cookie sessions). Scripts send Hub API
tokens. What a caller may do comes from its scopes:

* ``custom:secrets:admin``: a secrets admin (from a browser session, or a person's API token);
* ``custom:secrets:use``: a user, by name only. An API token with only this scope is treated
  as a user's Jupyter server in client mode: it may mint kernel tokens and ask for
  redactions for its user, never manage anything. That is what a singleuser server's own
  ``JUPYTERHUB_API_TOKEN`` should carry (the ``server`` role in the README's config).

Tokens this service issued (kernel, server, run) and the admin token, if one is set, work as
in the standalone service. Groups come from the Hub (and from ``c.SecretsExtensionApp.groups``).
"""

from __future__ import annotations

import html
import logging
import time
from typing import Any
from urllib.parse import quote

import httpx
from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated
from tornado import web

from ..api.base import SecretsHandler
from ..protocol import LOGGER_NAME
from ..services.access import Caller, Channel, Role
from ..services.tokens import kind_of
from .app import ServiceHandler
from .identity import ServiceIdentity, bearer

ADMIN_SCOPE = "custom:secrets:admin"
USE_SCOPE = "custom:secrets:use"
HUB_AUTH_KEY = "jupyter_secrets_hub_auth"
GROUPS_TTL_S = 60.0


class HubServiceHandler(HubOAuthenticated, ServiceHandler):
    """The tornado base under JupyterHub: the Hub's OAuth cookie or tokens."""

    @property
    def hub_auth(self) -> HubOAuth:
        auth: HubOAuth = self.settings[HUB_AUTH_KEY]
        return auth

    @hub_auth.setter
    def hub_auth(self, auth: HubOAuth) -> None:  # HubAuthenticated assigns it; ours is fixed
        pass

    def client_hints(self) -> dict[str, Any]:
        """A cookie session's XSRF token: the page sends it back as ``X-XSRFToken``."""
        if getattr(self, "_token_authenticated", False):
            return {}
        return {"xsrf": self.xsrf_token.decode() if isinstance(self.xsrf_token, bytes)
                else self.xsrf_token}


class HubIdentity(ServiceIdentity):
    def __init__(self, *args: Any, hub_auth: HubOAuth, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hub_auth = hub_auth
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}

    async def caller(self, handler: SecretsHandler) -> Caller | None:
        credential = bearer(handler)
        if credential is not None and (kind_of(credential) or self.is_admin_token(credential)):
            return await super().caller(handler)
        model = await self.hub_auth.get_user(handler, sync=False)
        if not model or model.get("kind", "user") != "user":
            return None
        scopes = set(model.get("scopes") or ())
        if not self.hub_auth.check_scopes(self.hub_auth.access_scopes, model):
            return None  # not allowed to access this service at all
        role: Role
        if ADMIN_SCOPE in scopes:
            role = "admin"
        elif USE_SCOPE in scopes:
            role = "user"
        else:
            return None
        token = bool(getattr(handler, "_token_authenticated", False))
        channel: Channel = "server" if token and role == "user" else "session"
        groups = frozenset(model.get("groups") or ())
        self._groups[model["name"]] = (time.monotonic(), groups)
        return Caller(model["name"], role, channel,
                      groups=groups | self.policy.groups_of(model["name"]))

    async def extra_groups(self, username: str) -> frozenset[str]:
        """A kernel token's user's Hub groups: asked of the Hub, kept for a minute."""
        cached = self._groups.get(username)
        if cached is not None and time.monotonic() - cached[0] < GROUPS_TTL_S:
            return cached[1]
        try:
            async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
                response = await client.get(
                    f"{self.hub_auth.api_url}/users/{quote(username, safe='')}",
                    headers={"Authorization": f"token {self.hub_auth.api_token}"})
            response.raise_for_status()
            groups = frozenset(response.json().get("groups") or ())
        except (httpx.HTTPError, ValueError):  # no group grants until the Hub answers
            logging.getLogger(LOGGER_NAME).warning(
                "jupyter-secrets: could not read %s's groups from the Hub (the service's "
                "role needs read:users:groups)", username, exc_info=True)
            groups = frozenset()
        self._groups[username] = (time.monotonic(), groups)
        return groups


class HubLoginHandler(HubServiceHandler):
    """``GET {prefix}login``: the Hub's OAuth flow for the panel, in a small window.

    The panel opens it when the service answers 403 for want of a session; after the Hub's
    login this page tells the panel (``postMessage``) and closes, so the panel keeps its state.
    """

    @web.authenticated
    def get(self) -> None:
        name = html.escape(str(self.current_user.get("name", "")))
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(
            "<!doctype html><meta charset=utf-8><title>jupyter-secrets</title>"
            f"<p>Signed in to jupyter-secrets as {name}. You can close this window.</p>"
            "<script>if (window.opener) { window.opener.postMessage("
            "'jupyter-secrets:signed-in', location.origin); window.close(); }</script>"
        )


def hub_routes(base_url: str) -> list[tuple[str, type[web.RequestHandler]]]:
    return [(f"{base_url}oauth_callback", HubOAuthCallbackHandler),
            (f"{base_url}login", HubLoginHandler)]
