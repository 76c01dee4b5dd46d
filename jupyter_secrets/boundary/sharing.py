"""Who may use a secret or a connection: everyone, or listed users and groups. Pure."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class SharedWith:
    """Who may use a secret or a connection besides admins: listed users and groups.

    A record whose ``shared_with`` is None is shared with everyone (the default).
    """

    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    def to_json(self) -> dict[str, list[str]]:
        return {"users": list(self.users), "groups": list(self.groups)}

    @classmethod
    def from_json(cls, raw: str | None) -> SharedWith | None:
        if raw is None:
            return None
        data = json.loads(raw)
        return cls(tuple(data.get("users", ())), tuple(data.get("groups", ())))

    def dumps(self) -> str:
        return json.dumps(self.to_json())


def shared_json(shared: SharedWith | None) -> dict[str, list[str]] | str:
    return "everyone" if shared is None else shared.to_json()


def grant(shared: SharedWith | None, user: str, groups: Collection[str], *,
          admin: bool = False) -> str | None:
    """What lets ``user`` use it (for the audit log), or None when nothing does."""
    if shared is None:
        return "everyone"
    if admin:
        return "admin"
    if user in shared.users:
        return f"user:{user}"
    for group in sorted(set(shared.groups) & set(groups)):
        return f"group:{group}"
    return None
