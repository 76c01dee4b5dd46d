"""``jupyter secrets serve``: the same API as its own process, and who may do what there.

One real service process per module (SQLite here; PostgreSQL in test_service_replicas.py),
a loopback upstream, and the credentials of each kind: the admin token, a user server's
token, kernel tokens the service minted at that server's request.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest

from .helpers import assert_no_canary, run_cli
from .live import LiveService, free_port

CANARY = "canary-service-0123456789abcdef"


@pytest.fixture(scope="module")
def service(tmp_path_factory, live_upstream):
    svc = LiveService(tmp_path_factory.mktemp("svc"), config={
        "kernel_token_grace": 2.0, "redactions_per_minute": 20,
        "service_allow_origins": ["https://hub.example.org"]})
    svc.start()
    host = f"127.0.0.1:{live_upstream.port}"
    with httpx.Client(base_url=f"{svc.api}/", headers=svc.admin, timeout=30) as admin:
        assert admin.post("connections", json={
            "name": "up", "base_url": live_upstream.url, "value": live_upstream.api_key,
        }).status_code == 201
        assert admin.post("secrets", json={"name": "CANARY", "value": CANARY,
                                           "allowed_hosts": [host]}).status_code == 201
    try:
        yield svc
    finally:
        svc.stop()
        assert_no_canary(CANARY, svc.log(), where="service log")
        assert_no_canary(live_upstream.api_key, svc.log(), where="service log")


@pytest.fixture(scope="module")
def alice_server(service) -> dict[str, str]:
    return {"Authorization": f"token {service.server_token('alice')}"}


def kernel_token(service, server: dict[str, str], kernel_id: str) -> dict[str, str]:
    r = httpx.post(f"{service.api}/kernel-tokens", headers=server, json={"kernel_id": kernel_id})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_the_service_will_not_start_without_an_admin_token(tmp_path):
    svc = LiveService(tmp_path)
    env = {k: v for k, v in svc.env().items() if k != "JUPYTER_SECRETS_ADMIN_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-m", "jupyter_secrets.cli", "serve", "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "JUPYTER_SECRETS_ADMIN_TOKEN" in result.stderr and "no default" in result.stderr


def test_each_credential_is_who_it_was_issued_for(service, alice_server):
    def me(headers: dict[str, str]) -> httpx.Response:
        return httpx.get(f"{service.api}/me", headers=headers)

    assert me(service.admin).json()["role"] == "admin"
    assert me({"Authorization": "token " + "0" * 64}).status_code == 403
    assert me({}).status_code == 403
    assert me(alice_server).json()["username"] == "alice"
    kernel = kernel_token(service, alice_server, "k-who")
    assert (me(kernel).json()["username"], me(kernel).json()["role"]) == ("alice", "user")


@pytest.mark.parametrize("who", ["server", "kernel"])
def test_server_and_kernel_credentials_cannot_manage_anything(service, alice_server, who):
    headers = alice_server if who == "server" else kernel_token(service, alice_server, "k-m")
    attempts = [
        ("POST", "secrets", {"name": "X", "value": "x-12345678"}),
        ("PUT", "secrets/CANARY", {"value": "replaced-123"}),
        ("PATCH", "secrets/CANARY", {"allowed_hosts": ["evil.example"]}),
        ("PATCH", "secrets/CANARY", {"description": "d"}),
        ("DELETE", "secrets/CANARY", None),
        ("POST", "connections", {"name": "evil", "base_url": "https://evil.example",
                                 "secret": "CANARY"}),
        ("PATCH", "connections/up", {"base_url": "https://evil.example"}),
        ("GET", "audit", None),
        ("POST", "scan", {"path": ""}),
    ]
    for method, path, body in attempts:
        r = httpx.request(method, f"{service.api}/{path}", headers=headers, json=body)
        assert r.status_code == 403, (method, path, r.text)
    record = httpx.get(f"{service.api}/secrets/CANARY", headers=service.admin).json()
    assert record["version"] == 1 and record["allowed_hosts"] == [
        f"127.0.0.1:{record['allowed_hosts'][0].split(':')[1]}"]


def test_kernels_call_by_name_through_the_service(service, alice_server, live_upstream):
    kernel = kernel_token(service, alice_server, "k-call")
    r = httpx.get(f"{service.api}/proxy/up/echo/x", headers=kernel)
    assert r.status_code == 200, r.text
    seen = live_upstream.requests[-1]
    assert seen.headers["Authorization"] == f"Bearer {live_upstream.api_key}"
    assert live_upstream.api_key not in r.text and "[REDACTED:UP_CONNECTION_KEY]" in r.text
    r = httpx.post(f"{service.api}/request", headers=kernel, json={
        "url": f"{live_upstream.url}/echo/y", "headers": {"X-Key": "{{secrets.CANARY}}"}})
    assert r.status_code == 200 and CANARY not in r.text
    names = httpx.get(f"{service.api}/secrets", headers=kernel).json()["secrets"]
    assert {s["name"] for s in names} == {"CANARY"}


def test_kernel_tokens_die_with_the_kernel_or_without_heartbeats(service, alice_server):
    def works(headers: dict[str, str]) -> bool:
        return httpx.get(f"{service.api}/me", headers=headers).status_code == 200

    bob_server = {"Authorization": f"token {service.server_token('bob')}"}
    doomed = kernel_token(service, alice_server, "k-doomed")
    httpx.delete(f"{service.api}/kernel-tokens/k-doomed", headers=bob_server)
    assert works(doomed), "another server cannot revoke alice's kernel"
    assert httpx.delete(f"{service.api}/kernel-tokens/k-doomed",
                        headers=alice_server).status_code == 204
    assert not works(doomed), "revoked at once"

    kept = kernel_token(service, alice_server, "k-kept")
    lapsed = kernel_token(service, alice_server, "k-lapsed")
    for _ in range(4):  # the grace is 2 s here: heartbeats keep k-kept alive
        r = httpx.post(f"{service.api}/kernel-tokens/heartbeat", headers=alice_server,
                       json={"kernel_ids": ["k-kept"]})
        assert r.status_code == 200
        time.sleep(0.8)
    assert works(kept) and not works(lapsed)


def test_redaction_for_client_servers_is_rate_limited(service, alice_server):
    notebook = {"cells": [{"cell_type": "code", "source": f"key = '{CANARY}'",
                           "metadata": {}, "outputs": []}], "metadata": {}}
    r = httpx.post(f"{service.api}/redact", headers=alice_server, json={"notebook": notebook})
    assert r.status_code == 200 and r.json()["names"] == ["CANARY"]
    assert CANARY not in r.text and "[REDACTED:CANARY]" in r.text
    kernel = kernel_token(service, alice_server, "k-redact")
    assert httpx.post(f"{service.api}/redact", headers=kernel,
                      json={"text": "x"}).status_code == 403
    statuses = [httpx.post(f"{service.api}/redact", headers=alice_server,
                           json={"text": "nothing here"}) for _ in range(25)]
    limited = [s for s in statuses if s.status_code == 429]
    assert limited and int(limited[0].headers["Retry-After"]) in range(1, 61)
    assert "at most 20 per minute" in limited[0].json()["message"]


def test_browsers_of_allowed_origins_may_call_it(service):
    origin = {"Origin": "https://hub.example.org", "Access-Control-Request-Method": "PUT",
              "Access-Control-Request-Headers": "authorization, content-type"}
    pre = httpx.options(f"{service.api}/secrets/CANARY", headers=origin)
    assert pre.status_code == 204
    assert pre.headers["Access-Control-Allow-Origin"] == "https://hub.example.org"
    assert "Authorization" in pre.headers["Access-Control-Allow-Headers"]
    evil = httpx.options(f"{service.api}/secrets/CANARY",
                         headers={**origin, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in evil.headers
    got = httpx.get(f"{service.api}/me",
                    headers={**service.admin, "Origin": "https://hub.example.org"})
    assert got.headers["Access-Control-Allow-Origin"] == "https://hub.example.org"


def test_the_admin_cli_manages_the_service_with_the_admin_token(service, cli_env):
    env = dict(cli_env, JUPYTER_SECRETS_SERVICE_URL=service.url,
               JUPYTER_SECRETS_ADMIN_TOKEN=service.admin_token)
    env.pop("JUPYTER_SECRETS_KEY")
    value = "cli-value-abcdef123456"
    outputs = [run_cli(env, "set", "FROM_CLI", "--allowed-host", "api.example.com",
                       stdin=value)]
    assert outputs[-1].returncode == 0, outputs[-1].stderr
    outputs.append(run_cli(env, "edit", "FROM_CLI", "--placement", "header",
                           "--placement", "body"))
    outputs.append(run_cli(env, "list"))
    assert "FROM_CLI" in outputs[-1].stdout and "header,body" in outputs[-1].stdout
    outputs.append(run_cli(env, "set", "FROM_CLI", stdin=value + "-2"))
    assert "version 2" in outputs[-1].stdout
    outputs.append(run_cli(env, "audit", "--secret", "FROM_CLI", "--json"))
    actions = [e["action"] for e in json.loads(outputs[-1].stdout)["events"]]
    assert actions[:3] == ["replace", "metadata", "create"]
    outputs.append(run_cli(env, "delete", "FROM_CLI"))
    assert outputs[-1].returncode == 0
    no_token = {k: v for k, v in env.items() if k != "JUPYTER_SECRETS_ADMIN_TOKEN"}
    refused = run_cli(no_token, "list")
    assert refused.returncode == 1 and "JUPYTER_SECRETS_ADMIN_TOKEN" in refused.stderr
    for out in outputs:
        assert_no_canary(value, out.stdout, out.stderr, where="CLI output")
    assert not list((service.root.parent).glob("**/FROM_CLI*"))


def test_a_strict_service_takes_destination_changes_from_the_cli_only(tmp_path, cli_env):
    """``destinations_from_browsers = False`` on the service: the admin's browser login (here
    the admin token sent with a browser's Origin) cannot widen hosts; the admin CLI can."""
    svc = LiveService(tmp_path, config={"destinations_from_browsers": False,
                                        "service_allow_origins": ["https://hub.example.org"]})
    svc.start()
    try:
        browser = {**svc.admin, "Origin": "https://hub.example.org"}
        with httpx.Client(base_url=f"{svc.api}/", timeout=30) as client:
            assert client.post("secrets", headers=browser, json={
                "name": "TEAM", "value": "team-value-123456"}).status_code == 201
            widened = client.patch("secrets/TEAM", headers=browser,
                                   json={"allowed_hosts": ["evil.example"]})
            assert widened.status_code == 403, widened.text
            assert "jupyter secrets CLI" in widened.json()["message"]
            env = dict(cli_env, JUPYTER_SECRETS_SERVICE_URL=svc.url,
                       JUPYTER_SECRETS_ADMIN_TOKEN=svc.admin_token)
            env.pop("JUPYTER_SECRETS_KEY")
            edited = run_cli(env, "edit", "TEAM", "--allowed-host", "api.example.com")
            assert edited.returncode == 0, edited.stderr
            record = client.get("secrets/TEAM", headers=svc.admin).json()
            assert record["allowed_hosts"] == ["api.example.com"]
    finally:
        svc.stop()
