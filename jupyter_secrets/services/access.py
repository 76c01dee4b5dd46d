"""Who is calling and what they may do: roles, channels and the checks every app shares.

Admins are a configured set of user names. When none is configured, a server with a single
identity (the default token/password login, where whoever holds the token owns the server
process) treats its user as admin, and a JupyterHub single-user server treats its owner
(``JUPYTERHUB_USER``) as admin. Any other identity provider gets no implicit admin: configure
``admin_users``.

A caller also comes through a *channel*: a person's ``session`` (browser login, CLI, admin
token) or a ``kernel`` token. Where a value may go (allowed hosts, connections) is changed
only from a session: otherwise code in a kernel (a package, an agent) could add its own host
and send the value there.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from ..errors import PermissionDenied

Role = Literal["admin", "user"]
#: How a caller came in: a person's session (browser login, CLI, admin token), a kernel
#: token, a user's Jupyter server in client mode (its server token), or a headless run.
Channel = Literal["session", "kernel", "server", "run"]


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: the name recorded as actor, their role, how they came in."""

    name: str
    role: Role
    channel: Channel = "session"
    kernel_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


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
        single_identity: bool,
        hub_user: str | None,
        users_can_list: bool,
        server_user: str,
    ) -> RolePolicy:
        admins = frozenset(admin_users)
        if not admins and hub_user:
            admins = frozenset({hub_user})
        return cls(
            admins,
            everyone_is_admin=not admins and single_identity,
            users_can_list=users_can_list,
            server_user=server_user if single_identity else None,
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

    def caller(
        self, username: str, *, channel: Channel = "session", kernel_id: str | None = None
    ) -> Caller:
        return Caller(self.actor(username), self.role_of(username), channel, kernel_id)

    def describe(self) -> str:
        if self.everyone_is_admin:
            return "single-user server: its authenticated user is admin"
        if self.admin_users:
            return f"admins: {', '.join(sorted(self.admin_users))}"
        return "no admin configured (set SecretsExtensionApp.admin_users)"

    # -- checks (raise PermissionDenied with a message a person can act on) ----------------

    def require_reader(self, caller: Caller) -> None:
        if not caller.is_admin and not self.users_can_list:
            raise PermissionDenied("Only secrets admins can see secrets on this server.")

    def require_admin(self, caller: Caller, what: str = "change secrets") -> None:
        """Managing secrets (values, metadata, connections, audit, scans) is a person's work.

        Admin role *and* a person's session: a kernel token never manages, whoever started
        the kernel, so code in a kernel (a package, an AI agent) cannot replace a value, move
        one to its own host, or read who did what.
        """
        if not caller.is_admin:
            raise PermissionDenied(f"Only secrets admins can {what}.")
        self.require_session(caller, what)

    @staticmethod
    def require_channel(caller: Caller, channel: Channel, what: str) -> None:
        if caller.channel != channel:
            raise PermissionDenied(f"Only a {channel} credential can {what}.")

    @staticmethod
    def require_session(caller: Caller, what: str) -> None:
        """Egress policy (where values may go) is changed by people, not by kernel code."""
        if caller.channel != "session":
            raise PermissionDenied(
                f"Kernels cannot {what}: that is done by a person, in the Secrets sidebar, "
                "with the jupyter secrets CLI in a terminal (e.g. jupyter secrets edit NAME "
                "--allowed-host HOST) or the REST API with your login."
            )
