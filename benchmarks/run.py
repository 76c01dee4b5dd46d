"""Proxy overhead: the same upstream called directly and through jupyter-secrets, one run.

Starts a loopback upstream and a real Jupyter server with the extension, then times
sequential requests both ways and prints medians and ratios (proxied / direct). Bounded in
count and time; loopback only.

    python benchmarks/run.py [--requests 200]
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.upstream import start_upstream  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(tmp: Path, token: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "JUPYTER_SECRETS_KEY": subprocess.check_output(
        [sys.executable, "-m", "jupyter_secrets.cli", "generate-key"], text=True).strip(),
        "JUPYTER_SECRETS_STORE_URL": f"sqlite:///{tmp}/secrets.db",
        "JUPYTER_CONFIG_DIR": str(tmp / "config"), "JUPYTER_DATA_DIR": str(tmp / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime")}
    args = [sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={port}",
            "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={tmp}", "--ServerApp.jpserver_extensions="
            "{'jupyter_secrets': True, 'jupyter_server_terminals': False}", "--allow-root"]
    log = (tmp / "server.log").open("wb")
    return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(url: str, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/me", headers=headers).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the Jupyter server did not start; see server.log")


def timed(client: httpx.Client, n: int, method: str, url: str, **kw: object) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.request(method, url, **kw)  # type: ignore[arg-type]
        response.read()
        assert response.status_code == 200, response.text
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def first_byte(client: httpx.Client, n: int, url: str, **kw: object) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        with client.stream("POST", url, **kw) as response:  # type: ignore[arg-type]
            chunks = response.iter_raw()
            next(chunks)
            samples.append((time.perf_counter() - started) * 1000)
            for _ in chunks:
                pass
    return samples


def report(name: str, direct: list[float], proxied: list[float]) -> None:
    d, p = statistics.median(direct), statistics.median(proxied)
    print(f"{name:<28} direct {d:7.2f} ms   proxied {p:7.2f} ms   ratio {p / d:5.2f}x   "
          f"added {p - d:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    key, token, port = f"sk-{secrets.token_hex(16)}", secrets.token_hex(16), free_port()
    upstream = start_upstream(api_key=key, stream_delay=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp), token, port)
        try:
            api = f"http://127.0.0.1:{port}/api/secrets/v1"
            admin = {"Authorization": f"token {token}"}
            wait_ready(api, admin)
            httpx.post(f"{api}/connections", headers=admin, json={
                "name": "bench", "preset": "openai", "base_url": f"{upstream.url}/v1",
                "value": key}).raise_for_status()
            chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            direct_auth = {"Authorization": f"Bearer {key}"}
            n = args.requests
            with httpx.Client(timeout=30) as client:
                timed(client, 10, "POST", f"{api}/proxy/bench/chat/completions", json=chat,
                      headers=admin)  # warm-up
                report("chat completion", timed(client, n, "POST",
                       f"{upstream.url}/v1/chat/completions", json=chat, headers=direct_auth),
                       timed(client, n, "POST", f"{api}/proxy/bench/chat/completions",
                             json=chat, headers=admin))
                stream = {**chat, "stream": True}
                report("stream: first byte", first_byte(
                    client, n // 4, f"{upstream.url}/v1/chat/completions", json=stream,
                    headers=direct_auth), first_byte(
                    client, n // 4, f"{api}/proxy/bench/chat/completions", json=stream,
                    headers=admin))
                overhead = [float(client.post(f"{api}/proxy/bench/chat/completions",
                                              json=chat, headers=admin)
                                  .headers["X-Jupyter-Secrets-Overhead-Ms"]) for _ in range(50)]
                print(f"{'server-reported overhead':<28} median {statistics.median(overhead):.2f}"
                      " ms (X-Jupyter-Secrets-Overhead-Ms: time before the upstream call)")
        finally:
            server.terminate()
            server.wait(10)
            upstream.stop()


if __name__ == "__main__":
    main()
