"""Who is an admin.

Admins are a configured set of user names. When none is configured, a server with a
single identity (the default token/password login, where whoever holds the token owns
the server process) treats its user as admin, and a JupyterHub single-user server
treats its owner (``JUPYTERHUB_USER``) as admin. Any other identity provider gets no
implicit admin: configure ``admin_users``.
"""

from __future__ import annotations

import getpass
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from jupyter_server.auth.identity import IdentityProvider, PasswordIdentityProvider

Role = Literal["admin", "user"]
_SINGLE_IDENTITY_PROVIDERS = (IdentityProvider, PasswordIdentityProvider)


@dataclass(frozen=True)
class RolePolicy:
    admin_users: frozenset[str]
    everyone_is_admin: bool
    users_can_list: bool
    server_user: str | None = None

    @classmethod
    def build(
        cls,
        *,
        admin_users: Collection[str],
        identity_provider: object,
        hub_user: str | None,
        users_can_list: bool,
    ) -> RolePolicy:
        admins = frozenset(admin_users)
        if not admins and hub_user:
            admins = frozenset({hub_user})
        single_identity = type(identity_provider) in _SINGLE_IDENTITY_PROVIDERS
        everyone_is_admin = not admins and single_identity
        return cls(
            admins,
            everyone_is_admin=everyone_is_admin,
            users_can_list=users_can_list,
            server_user=getpass.getuser() if single_identity else None,
        )

    def actor(self, username: str) -> str:
        """The name recorded as owner/updater.

        A token-authenticated server makes up a random user per browser; they are all the
        one person who owns the server, so record the server's OS user (as the CLI does).
        """
        return self.server_user or username

    def role_of(self, username: str) -> Role:
        if self.everyone_is_admin or username in self.admin_users:
            return "admin"
        return "user"

    def describe(self) -> str:
        if self.everyone_is_admin:
            return "single-user server: its authenticated user is admin"
        if self.admin_users:
            return f"admins: {', '.join(sorted(self.admin_users))}"
        return "no admin configured (set SecretsExtensionApp.admin_users)"
