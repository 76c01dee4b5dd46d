"""Canary hunt for the store and admin API: a value lives only as ciphertext on disk."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

from .helpers import JUPYTER, assert_no_canary


def every_file_under(root: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in root.rglob("*") if p.is_file()]


async def test_canaries_never_leave_the_ciphertext(
    server_log, master_key, api, responses, tmp_path: Path, store_path: Path, canary: str
):
    first, second, third = f"{canary}-one", f"{canary}-two", f"{canary}-three"
    assert (await api("POST", "secrets", body={"name": "A", "value": first}))[0] == 201
    assert (await api("PUT", "secrets", "A", body={"value": second}))[0] == 200
    assert (await api("PUT", "secrets", body={"secrets": [{"key": "B", "value": third}]}))[0] \
        == 200
    # Error paths quote nothing either.
    await api("POST", "secrets", body={"name": "A", "value": first})
    await api("POST", "secrets", body={"name": "bad name!", "value": first})
    await api("POST", "secrets", body={"name": "C", "value": first, "colour": first})
    await api("POST", "secrets", raw='{"name": "C", "value": "' + first)
    await api("GET", "secrets")
    await api("GET", "secrets", "A")

    assert_no_canary(canary, *responses, where="HTTP response")
    assert_no_canary(canary, server_log(), where="server log")
    for path, data in every_file_under(tmp_path):
        assert_no_canary(canary, data, where=str(path))
    assert store_path.exists() and os.path.getsize(store_path) > 0


async def test_cli_writes_land_while_the_server_is_running(
    master_key, api, store_path: Path, tmp_path: Path, canary: str
):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(
        JUPYTER_SECRETS_KEY=master_key,
        JUPYTER_SECRETS_STORE_URL=f"sqlite:///{store_path}",
        JUPYTER_CONFIG_DIR=str(tmp_path / "cli-config"),
        JUPYTER_DATA_DIR=str(tmp_path / "cli-data"),
    )

    def cli_set(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([JUPYTER, "secrets", "set", name], input=canary, env=env,
                              capture_output=True, text=True, timeout=60)

    cli_names = [f"CLI_{i}" for i in range(5)]
    rest_items = [{"key": f"REST_{i}", "value": canary} for i in range(20)]
    cli_runs = [asyncio.to_thread(cli_set, name) for name in cli_names]
    rest_call = api("PUT", "secrets", body={"secrets": rest_items})
    *results, (status, _) = await asyncio.gather(*cli_runs, rest_call)
    assert status == 200
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    _, listing = await api("GET", "secrets")
    names = {s["name"] for s in listing["secrets"]}
    assert names == set(cli_names) | {i["key"] for i in rest_items}
