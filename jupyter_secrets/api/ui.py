"""Small endpoints the browser UI needs: the health banner and the notice after a redacted save.

``GET health`` lists what a person should know and act on: secrets sealed under a master key
this server lacks, a store it cannot read, a key rotation left half done. ``GET redactions``
tells the page which names (never values) the server redacted from the files it saved, so
the page can say so and reload the document from disk. Both answer names and counts only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..runtime import SecretsRuntime
from .base import Route, SecretsHandler, http_error

#: tornado settings key of the app's :class:`RedactionFeed` (set by the server extension).
REDACTIONS_KEY = "jupyter_secrets_redactions"
MAX_NAMED = 5


class RedactionFeed(Protocol):
    """Recent save-time redactions: ``(notices after id, the latest id)``."""

    def since(
        self, after: int | None, *, path: str | None, saved_by: Callable[[str], bool]
    ) -> tuple[list[dict[str, Any]], int]: ...


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMED])
    return shown + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")


def _count(n: int) -> str:
    return f"{n} secret{'s' * (n != 1)}"


def _are(n: int) -> str:
    return "are" if n != 1 else "is"


def health_problems(runtime: SecretsRuntime) -> list[dict[str, str]]:
    """What is wrong with the store and keys, each with what to do; [] when all is well."""
    service = runtime.secrets
    store = service.store
    try:
        in_use = store.key_ids_in_use()
    except Exception as error:  # any store (SQLite, PostgreSQL) failing to answer
        detail = " ".join(str(error).split())[:200]
        return [{
            "code": "store_unreachable",
            "message": f"The secrets store at {store.location} cannot be read "
                       f"({type(error).__name__}: {detail}). Secrets cannot be used or changed "
                       "until it is reachable; check the store URL, the file's permissions or "
                       "the database server.",
        }]
    keyring = service.keyring
    configured = set(keyring.key_ids)
    missing = sorted(in_use - configured)
    older = sorted((in_use & configured) - {keyring.primary.key_id})
    if not missing and not older:
        return []
    by_key: dict[str, list[str]] = {}
    for record in store.list_secrets():
        by_key.setdefault(record.key_id, []).append(record.name)
    problems = []
    for key_id in missing:
        names = by_key.get(key_id, [])
        n = len(names)
        problems.append({
            "code": "key_missing",
            "message": f"{_count(n)} ({_names(names)}) {_are(n)} sealed with master key id "
                       f"{key_id}, which this server does not have: {'they' if n != 1 else 'it'} "
                       "cannot be used. "
                       "Add that key to JUPYTER_SECRETS_KEY (comma-separated, new key first) or "
                       "restore its key file, then restart the server.",
        })
    for key_id in older:
        n = len(by_key.get(key_id, []))
        problems.append({
            "code": "rotation_pending",
            "message": f"{_count(n)} {_are(n)} still sealed with an older master key "
                       f"(id {key_id}). Run `jupyter secrets rotate-key` to re-seal them under "
                       f"the primary key ({keyring.primary.key_id}); then the old key can be "
                       "dropped.",
        })
    return problems


class HealthHandler(SecretsHandler):
    """``GET health``: ``{"ok": bool, "problems": [{"code", "message"}]}`` for the banner."""

    async def get(self) -> None:
        self.require_reader()
        problems = await self.call(health_problems, self.runtime)
        self.write_json({"ok": not problems, "problems": problems})


class RedactionsHandler(SecretsHandler):
    """``GET redactions?after=ID&path=P``: the caller's recent redacted saves (names only)."""

    async def get(self) -> None:
        self.require_session("read save notices")
        raw_after = self.get_query_argument("after", "")
        if raw_after and not raw_after.isdigit():
            raise http_error(422, "after must be a whole number (a redaction id).")
        path = self.get_query_argument("path", "") or None
        feed: RedactionFeed | None = self.settings.get(REDACTIONS_KEY)
        if feed is None:  # redact_on_save is off: nothing is ever redacted
            self.write_json({"redactions": [], "latest": 0})
            return
        me = self.caller.name

        def saved_by_me(username: str) -> bool:  # the same person, as the policy names them
            return self.access.actor(username) == me

        notices, latest = feed.since(int(raw_after) if raw_after else None, path=path,
                                     saved_by=saved_by_me)
        if not (self.caller.is_admin or self.access.users_can_list):
            # Whoever may not list names learns only that something was redacted.
            notices = [{**n, "names": []} for n in notices]
        self.write_json({"redactions": notices, "latest": latest})


routes: list[Route] = [
    ("health", HealthHandler),
    ("redactions", RedactionsHandler),
]
