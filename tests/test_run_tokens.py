"""Headless runs (papermill, nbclient, scheduled jobs) with run tokens.

A kernel a server did not start has no kernel token; an admin mints a run token bound to a
user (``jupyter secrets token create --ttl 8h --name nightly``), use-only, listed with its
last use, revocable at once, expiring. ``JUPYTER_SECRETS_URL`` + ``JUPYTER_SECRETS_TOKEN``
make the client use it. A revoked or expired token is refused at once, saying why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .helpers import assert_no_canary
from .live import LiveServer

NOTEBOOK = Path(__file__).parent.parent / "notebooks" / "quickstart.ipynb"
CANARY = "canary-run-token-0123456789abcdef"


@pytest.fixture(scope="module")
def server(tmp_path_factory, live_upstream):
    live = LiveServer(tmp_path_factory.mktemp("runs")).start()
    with httpx.Client(base_url=f"{live.api}/", headers=live.admin, timeout=30) as admin:
        assert admin.post("connections", json={
            "name": "openai", "preset": "openai", "base_url": f"{live_upstream.url}/v1",
            "value": live_upstream.api_key}).status_code == 201
        assert admin.post("secrets", json={
            "name": "EXAMPLE_TOKEN", "value": CANARY,
            "allowed_hosts": [f"127.0.0.1:{live_upstream.port}"]}).status_code == 201
    try:
        yield live
    finally:
        live.stop()


def cli(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = server_env(server)
    return subprocess.run([sys.executable, "-m", "jupyter_secrets.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def server_env(server: LiveServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(JUPYTER_CONFIG_DIR=str(server.root / "cli-config"),
               JUPYTER_DATA_DIR=str(server.root / "data"),
               JUPYTER_SECRETS_STORE_URL=server.store_url, JUPYTER_SECRETS_KEY=server.key)
    return env


def papermill(
    server: LiveServer, token: str, upstream, out: Path
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_SECRETS")}
    env.update(JUPYTER_SECRETS_URL=server.api, JUPYTER_SECRETS_TOKEN=token)
    return subprocess.run(
        [sys.executable, "-m", "papermill", str(NOTEBOOK), str(out), "-k", "python3",
         "-p", "ECHO_URL", f"{upstream.url}/echo/get", "--log-output"],
        env=env, capture_output=True, text=True, timeout=300)


def test_papermill_runs_the_quickstart_with_a_run_token(server, live_upstream, tmp_path):
    made = cli(server, "token", "create", "--name", "nightly", "--ttl", "8h", "--user", "alice")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("jsr_") and "nightly" in made.stderr
    out = tmp_path / "ran.ipynb"
    result = papermill(server, token, live_upstream, out)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = json.dumps([c.get("outputs", []) for c in json.loads(out.read_text())["cells"]])
    assert "connections: ['openai']" in outputs and "200 Hello from upstream" in outputs
    assert "Bearer [REDACTED:EXAMPLE_TOKEN]" in outputs
    assert_no_canary(CANARY, outputs, result.stdout, result.stderr, out.read_text())
    listed = cli(server, "token", "list")
    assert "nightly" in listed.stdout and "alice" in listed.stdout and "live" in listed.stdout
    assert " - " not in listed.stdout.splitlines()[1], "its last use is shown"

    # use-only: a run token manages nothing
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{server.api}/me", headers=bearer).json()["username"] == "alice"
    assert httpx.post(f"{server.api}/secrets", headers=bearer,
                      json={"name": "X", "value": "x-1234567"}).status_code == 403
    assert httpx.post(f"{server.api}/tokens", headers=bearer,
                      json={"name": "more", "ttl": "1h"}).status_code == 403

    token_id = listed.stdout.splitlines()[1].split()[0]
    revoked = cli(server, "token", "revoke", token_id)
    assert revoked.returncode == 0 and "Revoked" in revoked.stdout
    refused = httpx.get(f"{server.api}/secrets", headers=bearer)
    assert refused.status_code == 403 and "was revoked at" in refused.json()["message"]
    again = papermill(server, token, live_upstream, tmp_path / "again.ipynb")
    assert again.returncode != 0 and "was revoked at" in again.stderr + again.stdout


def test_expired_run_tokens_say_so(server):
    r = httpx.post(f"{server.api}/tokens", headers=server.admin,
                   json={"name": "brief", "ttl": "1s", "user": "bob"})
    assert r.status_code == 201 and r.json()["username"] == "bob"
    bearer = {"Authorization": f"Bearer {r.json()['token']}"}
    time.sleep(1.5)
    refused = httpx.get(f"{server.api}/secrets", headers=bearer)
    assert refused.status_code == 403
    assert "(brief) expired at" in refused.json()["message"]
    assert "jupyter secrets token create" in refused.json()["message"]


@pytest.mark.parametrize(("body", "words"), [
    ({"name": "x", "ttl": "forever"}, "positive duration"),
    ({"name": "x", "ttl": "91d"}, "at most 90 days"),
    ({"name": "", "ttl": "1h"}, "name must be"),
    ({"ttl": "1h"}, "Missing field"),
])
def test_bad_run_token_requests_are_refused(server, body, words):
    r = httpx.post(f"{server.api}/tokens", headers=server.admin, json=body)
    assert r.status_code == 422 and words in r.json()["message"], r.text
