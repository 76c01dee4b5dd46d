"""Rotating the master key while servers run, as the README says, loses nothing.

Key file (the default): the CLI writes the new key into the file, the running server follows
it within a second, then the data keys are re-wrapped and the old key dropped; calls keep
working without a restart. ``JUPYTER_SECRETS_KEY``: the CLI refuses while a running server
lacks the new key, and works once it has been restarted with both keys.
"""

from __future__ import annotations

import asyncio
import os

import httpx

from jupyter_secrets.crypto import Keyring
from jupyter_secrets.keys import generate_key_text
from jupyter_secrets.store import open_store

from .helpers import assert_no_canary, http, run_cli


async def test_a_key_file_rotation_is_followed_by_the_running_server(
    runtime, up_connection, server_url, auth, key_file, store_path, tmp_path, canary
):
    old_id = runtime.secrets.keyring.primary.key_id
    assert (await http("GET", f"{server_url}/proxy/up/echo/before", headers=auth)).status_code \
        == 200
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "cli-config"),
               JUPYTER_DATA_DIR=str(tmp_path / "cli-data"),
               JUPYTER_SECRETS_STORE_URL=f"sqlite:///{store_path}",
               JUPYTER_SECRETS_KEY_FILE=str(key_file))
    result = await asyncio.to_thread(run_cli, env, "rotate-key")
    assert result.returncode == 0, result.stderr
    assert "1 running server(s) followed the key file" in result.stdout
    new_id = Keyring.from_text(key_file.read_text()).primary.key_id
    assert new_id != old_id and len(key_file.read_text().split()) == 1, "old key dropped"
    assert key_file.stat().st_mode & 0o777 == 0o600
    store = open_store(f"sqlite:///{store_path}")
    try:
        assert store.key_ids_in_use() == {new_id}
    finally:
        store.close()
    for _ in range(50):  # the server reloads the file within a second
        if runtime.secrets.keyring.key_ids == [new_id]:
            break
        await asyncio.sleep(0.1)
    r = await http("GET", f"{server_url}/proxy/up/echo/after", headers=auth)
    assert r.status_code == 200, r.text
    assert_no_canary(canary, result.stdout, result.stderr, r.text, key_file.read_text())


def test_an_env_key_rotation_waits_for_servers_to_hold_the_new_key(
    tmp_path, live_upstream, cli_env
):
    from .live import LiveServer

    old = generate_key_text()
    new = generate_key_text()
    new_id = Keyring.from_text(new).primary.key_id
    server = LiveServer(tmp_path / "live", key=old).start()
    env = dict(cli_env, JUPYTER_SECRETS_STORE_URL=server.store_url,
               JUPYTER_SECRETS_KEY=f"{new},{old}")
    try:
        with httpx.Client(base_url=f"{server.api}/", headers=server.admin, timeout=30) as c:
            assert c.post("connections", json={"name": "up", "base_url": live_upstream.url,
                                               "value": live_upstream.api_key}).status_code == 201
        refused = run_cli(env, "rotate-key")
        assert refused.returncode == 1
        assert "do not hold the new master key" in refused.stderr
        assert 'JUPYTER_SECRETS_KEY="<new key>,<old key>"' in refused.stderr
        store = open_store(server.store_url)
        assert new_id not in store.key_ids_in_use(), "nothing re-wrapped"

        server.stop()
        server.key = f"{new},{old}"
        server.start()
        done = run_cli(env, "rotate-key")
        assert done.returncode == 0, done.stderr
        assert store.key_ids_in_use() == {new_id}
        store.close()
        r = httpx.get(f"{server.api}/proxy/up/echo/x", headers=server.admin, timeout=30)
        assert r.status_code == 200, r.text
    finally:
        server.stop()
    assert old not in refused.stderr and new not in refused.stderr + done.stdout
