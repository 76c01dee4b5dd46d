"""A Jupyter server in client mode: no store, no key, no value; kernels use the service.

The user's server (pytest-jupyter, in process) points at a real secrets service (a
subprocess). Its kernels get a token the service minted for the server's user, call
connections by name at the service, and lose the token when they shut down; saves are
redacted by the service; nothing that can manage secrets reaches the server or its kernels.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import httpx
import pytest

from .helpers import assert_no_canary, http
from .kernels import Kernel
from .live import LiveService

CANARY = "canary-client-mode-0123456789abcdef"


@pytest.fixture(scope="module")
def service(tmp_path_factory, live_upstream):
    svc = LiveService(tmp_path_factory.mktemp("svc")).start()
    with httpx.Client(base_url=f"{svc.api}/", headers=svc.admin, timeout=30) as admin:
        assert admin.post("connections", json={
            "name": "up", "base_url": live_upstream.url, "value": live_upstream.api_key,
        }).status_code == 201
        assert admin.post("secrets", json={"name": "CANARY", "value": CANARY}).status_code == 201
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture(scope="module")
def server_token(service) -> str:
    return service.server_token("alice")


@pytest.fixture
def secrets_config(service, server_token, tmp_path) -> dict[str, object]:
    return {"service_url": service.url, "service_token": server_token,
            "key_file": str(tmp_path / "keys" / "never.key"),
            "store_url": f"sqlite:///{tmp_path}/store/never.db"}


async def test_the_server_only_says_where_the_service_is(api, jp_fetch, service, tmp_path):
    status, info = await api("GET", "info")
    assert status == 200
    assert info == {"mode": "client", "api_url": f"{service.url}api/secrets/v1"}
    here = await jp_fetch("api", "secrets", "v1", "secrets", raise_error=False)
    assert here.code == 404, "the API lives at the service"
    assert not (tmp_path / "store").exists() and not (tmp_path / "keys").exists()


async def test_kernels_use_the_service_and_hold_no_credential_that_manages(
    jp_fetch, jp_serverapp, http_server, service, server_token, live_upstream
):
    response = await jp_fetch("api", "kernels", method="POST", body=json.dumps({}))
    kernel_id = json.loads(response.body)["id"]
    kernel = await Kernel(jp_serverapp, kernel_id).start()
    try:
        out = await kernel.check(textwrap.dedent(f"""
            import os, json
            import jupyter_secrets as js
            env = dict(os.environ)
            r = js.connection("up").get("/echo/from-kernel")
            print(json.dumps({{
                "url": env["JUPYTER_SECRETS_URL"],
                "names": js.names(),
                "status": r.status_code,
                "scrubbed": "[REDACTED:UP_CONNECTION_KEY]" in r.text,
                "env_values": [k for k, v in env.items() if v in ({server_token!r},
                               {service.admin_token!r}, {service.key!r})],
                "private": [k for k in env if k.startswith("JUPYTER_SECRETS_")
                            and k not in ("JUPYTER_SECRETS_URL", "JUPYTER_SECRETS_TOKEN")],
            }}))
        """))
        token = await kernel.check("import os; print(os.environ['JUPYTER_SECRETS_TOKEN'])")
    finally:
        kernel.stop()
    result = json.loads(out.strip().splitlines()[-1])
    assert result["url"] == f"{service.url}api/secrets/v1"
    assert result["names"] == ["CANARY"] and result["status"] == 200 and result["scrubbed"]
    assert result["env_values"] == [] and result["private"] == []
    assert live_upstream.requests[-1].path == "/echo/from-kernel"
    bearer = {"Authorization": f"Bearer {token.strip()}"}
    assert (await http("GET", f"{service.api}/me", headers=bearer)).json()["username"] == "alice"
    await jp_fetch("api", "kernels", kernel_id, method="DELETE")
    assert (await http("GET", f"{service.api}/me", headers=bearer)).status_code == 403, "revoked"
    assert_no_canary(CANARY, out, token)


async def test_saves_are_redacted_by_the_service(jp_fetch, jp_root_dir: Path):
    model = {"type": "file", "format": "text", "content": f"key = '{CANARY}'\n"}
    await jp_fetch("api", "contents", "leak.py", method="PUT", body=json.dumps(model))
    assert (jp_root_dir / "leak.py").read_text() == "key = '[REDACTED:CANARY]'\n"
    notebook = {"type": "notebook", "content": {
        "cells": [{"id": "c1", "cell_type": "markdown", "source": f"my key {CANARY}",
                   "metadata": {}}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}}
    await jp_fetch("api", "contents", "leak.ipynb", method="PUT", body=json.dumps(notebook))
    saved = (jp_root_dir / "leak.ipynb").read_text()
    assert CANARY not in saved and "[REDACTED:CANARY]" in saved


@pytest.fixture
def no_server_token(secrets_config):
    secrets_config["service_token"] = ""


@pytest.mark.usefixtures("no_server_token")
async def test_without_a_server_token_it_says_what_to_do(api, monkeypatch):
    status, body = await api("GET", "info")
    assert status == 503 and "JUPYTER_SECRETS_SERVICE_TOKEN" in body["message"]
