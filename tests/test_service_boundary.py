"""The hard boundary, end to end: the service as one OS user, a notebook user as another.

The secrets service runs as its own user with the master key, the store and the admin token
in its private home and environment. A Jupyter server in client mode runs as an unprivileged
user and starts a kernel that acts as an attacker (tests/attacker.py): it reads every file and
every /proc/*/environ and cmdline it can, collects every credential it finds (its kernel token,
the server's service token, the Jupyter server's own token) and tries each against the admin
routes. It finds no value, no key, no admin token, changes no destination; meanwhile calls by
name from that kernel work.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from jupyter_secrets.keys import generate_key_text

from .attacker import ATTACK, digest
from .live import free_port, wait_for
from .osusers import OSUser, os_user, shared_python

pytestmark = pytest.mark.slow
CANARY = f"canary-{secrets.token_hex(16)}"


def _env(user: OSUser, **extra: str) -> dict[str, str]:
    return {"HOME": str(user.home), "USER": user.name, "PATH": "/usr/bin:/bin",
            "JUPYTER_CONFIG_DIR": str(user.home / ".jupyter"),
            "JUPYTER_DATA_DIR": str(user.home / ".local/share/jupyter"),
            "JUPYTER_RUNTIME_DIR": str(user.home / ".local/share/jupyter/runtime"), **extra}


def _start(python: Path, args: list[str], user: OSUser, env: dict[str, str],
           log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([str(python), *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT, **user.popen_kwargs())  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def python(tmp_path_factory) -> Path:
    return shared_python(Path(f"/tmp/jsecrets-shared-{secrets.token_hex(4)}"))


def test_hostile_kernel_code_finds_nothing_and_changes_nothing(
    python, live_upstream, tmp_path
):
    key, admin_token = generate_key_text(), secrets.token_hex(32)
    service_port, jupyter_port = free_port(), free_port()
    jupyter_token = secrets.token_hex(24)
    with os_user("jssvc") as svc, os_user("jsusr") as usr:
        svc_env = _env(svc, JUPYTER_SECRETS_STORE_URL=f"sqlite:///{svc.home}/store/s.db",
                       JUPYTER_SECRETS_KEY=key, JUPYTER_SECRETS_ADMIN_TOKEN=admin_token)
        service = _start(python, ["-m", "jupyter_secrets.cli", "serve", "--port",
                                  str(service_port)], svc, svc_env, tmp_path / "service.log")
        api = f"http://127.0.0.1:{service_port}/api/secrets/v1"
        admin = {"Authorization": f"token {admin_token}"}
        try:
            wait_for(f"{api}/info", service, lambda: (tmp_path / "service.log").read_text())
            host = f"127.0.0.1:{live_upstream.port}"
            assert httpx.post(f"{api}/connections", headers=admin, json={
                "name": "up", "base_url": live_upstream.url, "value": live_upstream.api_key,
            }).status_code == 201
            assert httpx.post(f"{api}/secrets", headers=admin, json={
                "name": "CANARY", "value": CANARY, "allowed_hosts": [host]}).status_code == 201
            server_token = subprocess.run(
                [str(python), "-m", "jupyter_secrets.cli", "server-token", "create", "--user",
                 usr.name], env=svc_env, capture_output=True, text=True, check=True,
                **svc.popen_kwargs()).stdout.strip()  # type: ignore[call-overload]

            config_dir = usr.home / ".jupyter"
            config_dir.mkdir()
            (config_dir / "jupyter_server_config.json").write_text(json.dumps({
                "ServerApp": {"jpserver_extensions": {"jupyter_secrets": True},
                              "port": jupyter_port, "ip": "127.0.0.1", "open_browser": False},
                "IdentityProvider": {"token": jupyter_token},
                "SecretsExtensionApp": {"service_url": f"http://127.0.0.1:{service_port}/"},
            }))
            subprocess.run(["chown", "-R", f"{usr.name}:{usr.name}", str(config_dir)],
                           check=True)
            jupyter = _start(python, ["-m", "jupyter_server"], usr,
                             _env(usr, JUPYTER_SECRETS_SERVICE_TOKEN=server_token),
                             tmp_path / "jupyter.log")
            try:
                result = _attack(jupyter, jupyter_port, jupyter_token, usr, tmp_path)
            finally:
                jupyter.terminate()
                jupyter.wait(timeout=30)
            after = httpx.get(f"{api}/secrets/CANARY", headers=admin).json()
            connections = httpx.get(f"{api}/connections", headers=admin).json()
        finally:
            service.terminate()
            service.wait(timeout=30)

    for secret in (CANARY, key, admin_token):
        assert digest(secret) not in {d for ds in result["found"].values() for d in ds}
    assert {"jsk_", "jss_", "other"} <= set(result["credential_kinds"]), "it found them all"
    assert result["scanned"]["environs"] >= 2 and result["scanned"]["files"] > 100
    for attempt, statuses in result["outcomes"].items():
        assert set(statuses) <= {401, 403}, (attempt, statuses)
    assert (after["version"], after["allowed_hosts"], after["placements"]) == (
        1, [f"127.0.0.1:{live_upstream.port}"], ["header"])
    assert [c["name"] for c in connections["connections"]] == ["up"]
    assert result["call_status"] == 200 and result["call_scrubbed"]
    assert result["names"] == ["CANARY"]
    for log in ("service.log", "jupyter.log"):
        text = (tmp_path / log).read_text()
        assert CANARY not in text and key not in text and admin_token not in text


def _attack(jupyter: subprocess.Popen[bytes], port: int, token: str, usr: OSUser,
            tmp_path: Path) -> dict[str, object]:
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/api/status", jupyter, lambda: (tmp_path / "jupyter.log").read_text())
    headers = {"Authorization": f"token {token}"}
    kernel_id = httpx.post(f"{url}/api/kernels", headers=headers, json={},
                           timeout=60).json()["id"]
    connection_file = usr.home / ".local/share/jupyter/runtime" / f"kernel-{kernel_id}.json"
    deadline = time.monotonic() + 30
    while not connection_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    client = BlockingKernelClient()
    client.load_connection_file(connection_file)
    client.start_channels()
    outputs: list[str] = []
    try:
        client.wait_for_ready(timeout=60)
        reply = client.execute_interactive(
            ATTACK, timeout=600, output_hook=lambda m: outputs.append(
                m["content"].get("text", "") + "\n".join(m["content"].get("traceback", []))))
    finally:
        client.stop_channels()
    assert reply["content"]["status"] == "ok", "".join(outputs)
    return json.loads("".join(outputs).strip().splitlines()[-1])
