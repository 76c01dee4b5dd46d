"""A test identity provider with several named users, each with its own token."""

from __future__ import annotations

from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.auth.identity import IdentityProvider, User
from tornado import web

TOKENS = {"alice-token": "alice", "bob-token": "bob"}


class NamedTokenIdentityProvider(IdentityProvider):
    """``Authorization: token alice-token`` is alice, ``bob-token`` is bob, else nobody."""

    def get_user(self, handler: web.RequestHandler) -> User | None:
        header = handler.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        username = TOKENS.get(token) if scheme.lower() == "token" else None
        if username is None:
            return None
        handler._token_authenticated = True  # type: ignore[attr-defined]
        return User(username=username)


class ReadOnlyAuthorizer(Authorizer):
    """Allows only ``read`` actions on the secrets resource."""

    def is_authorized(self, handler: web.RequestHandler, user: User, action: str,
                      resource: str) -> bool:
        return resource != "secrets" or action == "read"
