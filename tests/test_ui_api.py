"""The UI's own endpoints: ``GET health`` (the banner) and ``GET redactions`` (save notices)."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_secrets.crypto import Keyring
from jupyter_secrets.keys import generate_key_text
from jupyter_secrets.server.leak_guards import RedactionLog
from jupyter_secrets.services.secrets import SecretsService
from jupyter_secrets.store import open_store

from .helpers import ADMIN, USER, assert_no_canary
from .kernels import Kernel


async def test_health_is_ok_on_a_healthy_store(api) -> None:
    assert await api("GET", "health") == (200, {"ok": True, "problems": []})


@pytest.fixture
def old_key(store_path: Path) -> str:
    """A store whose two secrets are sealed with this key (its text)."""
    text = generate_key_text()
    service = SecretsService(open_store(f"sqlite:///{store_path}"), Keyring.from_text(text))
    service.create("ops", "OLD_ONE", "value-one")
    service.create("ops", "OLD_TWO", "value-two")
    service.store.close()
    return text


def key_id(text: str) -> str:
    return Keyring.from_text(text).primary.key_id


@pytest.fixture
def without_old_key(monkeypatch: pytest.MonkeyPatch, old_key: str) -> None:
    monkeypatch.setenv("JUPYTER_SECRETS_KEY", generate_key_text())


@pytest.fixture
def rotating(monkeypatch: pytest.MonkeyPatch, old_key: str) -> None:
    """The README's rotation, half done: the new key first, the old one still configured."""
    monkeypatch.setenv("JUPYTER_SECRETS_KEY", f"{generate_key_text()},{old_key}")


async def test_health_names_secrets_sealed_with_a_missing_key(without_old_key, old_key, api):
    status, body = await api("GET", "health")
    assert status == 200 and not body["ok"]
    (problem,) = body["problems"]
    assert problem["code"] == "key_missing"
    assert key_id(old_key) in problem["message"]
    assert "2 secrets (OLD_ONE, OLD_TWO)" in problem["message"]
    assert "JUPYTER_SECRETS_KEY" in problem["message"]
    assert old_key not in json.dumps(body)


async def test_health_says_a_rotation_is_pending_until_it_is_done(rotating, old_key, api,
                                                                  runtime):
    status, body = await api("GET", "health")
    assert status == 200
    (problem,) = body["problems"]
    assert problem["code"] == "rotation_pending"
    assert key_id(old_key) in problem["message"] and "rotate-key" in problem["message"]
    assert problem["message"].startswith("2 secrets are still sealed")
    assert runtime.secrets.rotate_master_key() == 2
    assert await api("GET", "health") == (200, {"ok": True, "problems": []})


async def test_health_reports_a_store_it_cannot_read(api, runtime, monkeypatch) -> None:
    def unreachable() -> set[str]:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(runtime.secrets.store, "key_ids_in_use", unreachable)
    status, body = await api("GET", "health")
    assert status == 200
    (problem,) = body["problems"]
    assert problem["code"] == "store_unreachable"
    assert "cannot be read" in problem["message"] and "unable to open" in problem["message"]


@pytest.fixture
def private_names(multi_user: None, secrets_config: dict[str, Any]) -> None:
    secrets_config["users_can_list"] = False


async def test_health_is_for_readers_only(private_names, api) -> None:
    assert (await api("GET", "health", headers=ADMIN))[0] == 200
    status, body = await api("GET", "health", headers=USER)
    assert status == 403 and "Only secrets admins" in body["message"]


# -- redactions --------------------------------------------------------------------------------


def notebook_with(text: str) -> dict[str, Any]:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"KEY = '{text}'")])
    return {"type": "notebook", "format": "json", "content": json.loads(nbformat.writes(nb))}


async def save(jp_fetch: Any, path: str, model: dict[str, Any],
               headers: dict[str, str] | None = None) -> None:
    await jp_fetch("api", "contents", path, method="PUT", body=json.dumps(model),
                   headers=headers or {})


async def test_a_redacted_save_is_announced_by_name_only(
    api, jp_fetch, runtime, canary, jp_root_dir: Path, responses
) -> None:
    runtime.secrets.create("admin", "OPENAI_API_KEY", canary)
    status, start = await api("GET", "redactions")
    assert status == 200 and start["redactions"] == []
    marker = start["latest"]

    await save(jp_fetch, "clean.ipynb", notebook_with("nothing to see"))
    await save(jp_fetch, "dir-less.ipynb", notebook_with(canary))
    await save(jp_fetch, "notes.txt", {"type": "file", "format": "text",
                                       "content": f"a={canary}\nb={canary}\n"})
    assert "[REDACTED:OPENAI_API_KEY]" in (jp_root_dir / "dir-less.ipynb").read_text()

    status, body = await api("GET", "redactions", params={"after": str(marker)})
    assert status == 200
    assert [(n["path"], n["names"], n["count"]) for n in body["redactions"]] == [
        ("dir-less.ipynb", ["OPENAI_API_KEY"], 1), ("notes.txt", ["OPENAI_API_KEY"], 2)]
    assert body["latest"] == body["redactions"][-1]["id"]
    status, only = await api("GET", "redactions", params={"after": str(marker),
                                                          "path": "notes.txt"})
    assert [n["path"] for n in only["redactions"]] == ["notes.txt"]
    status, later = await api("GET", "redactions", params={"after": str(body["latest"])})
    assert later["redactions"] == []
    assert (await api("GET", "redactions", params={"after": "x"}))[0] == 422
    assert_no_canary(canary, *responses, where="redactions response")


async def test_redaction_notices_go_to_the_saver_and_hide_names_from_non_readers(
    private_names, api, jp_fetch, runtime, canary
) -> None:
    runtime.secrets.create("admin", "TEAM_KEY", canary)
    await save(jp_fetch, "alice.ipynb", notebook_with(canary), ADMIN)
    await save(jp_fetch, "bob.ipynb", notebook_with(canary), USER)
    _, alice = await api("GET", "redactions", params={"after": "0"}, headers=ADMIN)
    _, bob = await api("GET", "redactions", params={"after": "0"}, headers=USER)
    assert [(n["path"], n["names"]) for n in alice["redactions"]] == [
        ("alice.ipynb", ["TEAM_KEY"])]
    assert [(n["path"], n["names"], n["count"]) for n in bob["redactions"]] == [
        ("bob.ipynb", [], 1)], "bob may not list names: he learns only that one was redacted"


async def test_kernels_cannot_read_save_notices(jp_fetch, jp_serverapp, http_server) -> None:
    """A kernel (with the token the server put in its environment) may see the health banner,
    not which of its user's saves were redacted: that would confirm guessed values."""
    started = await jp_fetch("api", "kernels", method="POST", body="{}")
    kernel = await Kernel(jp_serverapp, json.loads(started.body)["id"]).start()
    try:
        out = await kernel.check(textwrap.dedent("""
            import os, httpx
            url, token = os.environ["JUPYTER_SECRETS_URL"], os.environ["JUPYTER_SECRETS_TOKEN"]
            h = {"Authorization": f"Bearer {token}"}
            print(httpx.get(f"{url}/health", headers=h).status_code)
            refused = httpx.get(f"{url}/redactions", headers=h, params={"after": "0"})
            print(refused.status_code, refused.json()["message"])
        """))
    finally:
        kernel.stop()
        await jp_fetch("api", "kernels", kernel.kernel_id, method="DELETE")
    health, refused = out.strip().splitlines()
    assert health == "200"
    assert refused.startswith("403 Kernels cannot read save notices")


def test_the_redaction_log_is_bounded_and_filters() -> None:
    log = RedactionLog(keep=3)
    assert log.since(None) == ([], 0)
    for i in range(5):
        log.record(f"/n{i}.ipynb", {"A": 1, "B": 2}, "alice" if i % 2 else None)
    notices, latest = log.since(0, saved_by=lambda user: user == "bob")
    assert latest == 5
    assert [n["path"] for n in notices] == ["n2.ipynb", "n4.ipynb"], \
        "oldest forgotten; alice's saves are hers; saves by nobody known are everyone's"
    assert notices[0] == {"id": 3, "path": "n2.ipynb", "names": ["A", "B"], "count": 3,
                          "at": notices[0]["at"]}
    assert [n["id"] for n in log.since(3, saved_by=lambda user: user == "alice")[0]] == [4, 5]
    assert "n4" not in repr(log) and repr(log) == "RedactionLog(3 notices, latest=5)"
