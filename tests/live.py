"""A real ``jupyter server`` in a subprocess, shared by the tests of one module or session.

In-process pytest-jupyter servers are per test; fuzzing and the authorization matrix make
hundreds of calls, so they share one server started here: its own config, data and runtime
dirs, a fresh store and master key, alice (admin) and bob (user) from
``tests.identities.NamedTokenIdentityProvider``, and kernels started through its REST API
whose kernel tokens are read back from the kernels themselves.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from jupyter_client.blocking.client import BlockingKernelClient

from jupyter_secrets.keys import generate_key_text

ADMIN_TOKEN = "alice-token"
USER_TOKEN = "bob-token"
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    root: Path
    port: int = field(default_factory=free_port)
    key: str = field(default_factory=generate_key_text, repr=False)
    #: "named": alice and bob (tests.identities); "token": Jupyter's own single-token login.
    identity: str = "named"
    server_token: str = field(default_factory=lambda: secrets.token_hex(24), repr=False)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.url}/api/secrets/v1"

    shared_store: str | None = None  # another server's store (replicas, shared counters)

    @property
    def store_url(self) -> str:
        return self.shared_store or f"sqlite:///{self.root / 'store' / 'secrets.db'}"

    def start_on(self, store_url: str) -> LiveServer:
        """Start on an existing store (with the same master key)."""
        self.shared_store = store_url
        return self.start()

    def start(self, extra_config: dict[str, Any] | None = None) -> LiveServer:
        for sub in ("config", "data", "runtime", "notebooks", "store"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        server: dict[str, Any] = {
            "port": self.port, "ip": "127.0.0.1", "open_browser": False,
            "root_dir": str(self.root / "notebooks"),
            "jpserver_extensions": {"jupyter_secrets": True},
        }
        secrets_config: dict[str, Any] = dict(extra_config or {})
        if self.identity == "named":
            server["identity_provider_class"] = "tests.identities.NamedTokenIdentityProvider"
            secrets_config.setdefault("admin_users", ["alice"])
        config = {"ServerApp": server, "IdentityProvider": {"token": self.server_token},
                  "SecretsExtensionApp": secrets_config}
        (self.root / "config" / "jupyter_server_config.json").write_text(json.dumps(config))
        env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
        env.update(
            JUPYTER_CONFIG_DIR=str(self.root / "config"),
            JUPYTER_DATA_DIR=str(self.root / "data"),
            JUPYTER_RUNTIME_DIR=str(self.root / "runtime"),
            JUPYTER_SECRETS_STORE_URL=self.store_url,
            **({"JUPYTER_SECRETS_KEY": self.key} if self.key else {}),
            PYTHONPATH=str(REPO),
        )
        self.log_path = self.root / "server.log"
        args = [sys.executable, "-m", "jupyter_server"]
        if os.getuid() == 0:
            args.append("--allow-root")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            cwd=self.root)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter server exited:\n{self.log()}")
            try:
                if httpx.get(f"{self.api}/me", headers=self.admin, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"jupyter server did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing queued gets a chance to be written."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    @property
    def admin(self) -> dict[str, str]:
        token = ADMIN_TOKEN if self.identity == "named" else self.server_token
        return {"Authorization": f"token {token}"}

    @property
    def user(self) -> dict[str, str]:
        return {"Authorization": f"token {USER_TOKEN}"}

    # -- kernels -------------------------------------------------------------------------------

    def start_kernel(self, headers: dict[str, str]) -> str:
        response = httpx.post(f"{self.url}/api/kernels", headers=headers, json={}, timeout=60)
        response.raise_for_status()
        return str(response.json()["id"])

    def run_in_kernel(self, kernel_id: str, code: str) -> str:
        """Run code in a running kernel (as notebook code would); return what it printed."""
        client = BlockingKernelClient()
        client.load_connection_file(self.root / "runtime" / f"kernel-{kernel_id}.json")
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            outputs: list[str] = []

            def keep(msg: dict[str, Any]) -> None:
                content = msg["content"]
                outputs.append(content.get("text", ""))
                if msg["msg_type"] == "error":
                    outputs.append("\n".join(content["traceback"]))

            client.execute_interactive(code, timeout=120, output_hook=keep)
            return "".join(outputs).strip()
        finally:
            client.stop_channels()

    def kernel_env(self, kernel_id: str, name: str) -> str:
        """Read an environment variable inside a running kernel."""
        return self.run_in_kernel(kernel_id, f"import os; print(os.environ.get({name!r}, ''))")

    def stop_kernel(self, kernel_id: str) -> None:
        httpx.delete(f"{self.url}/api/kernels/{kernel_id}", headers=self.admin, timeout=60)


@dataclass
class LiveService:
    """``jupyter secrets serve`` in a subprocess, with its own store, key and admin token."""

    root: Path
    port: int = field(default_factory=free_port)
    key: str = field(default_factory=generate_key_text, repr=False)
    admin_token: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
    store_url: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def api(self) -> str:
        return f"{self.url}api/secrets/v1"

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"token {self.admin_token}"}

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
        env.update(
            JUPYTER_CONFIG_DIR=str(self.root / "config"),
            JUPYTER_DATA_DIR=str(self.root / "data"),
            JUPYTER_RUNTIME_DIR=str(self.root / "runtime"),
            JUPYTER_SECRETS_STORE_URL=self.store_url or f"sqlite:///{self.root}/store/s.db",
            JUPYTER_SECRETS_KEY=self.key,
            JUPYTER_SECRETS_ADMIN_TOKEN=self.admin_token,
        )
        return env

    def start(self) -> LiveService:
        (self.root / "config").mkdir(parents=True, exist_ok=True)
        (self.root / "config" / "jupyter_server_config.json").write_text(
            json.dumps({"SecretsExtensionApp": self.config}))
        with (self.root / "service.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jupyter_secrets.cli", "serve", "--port",
                 str(self.port)], env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                cwd=self.root)
        wait_for(f"{self.api}/info", self.process, self.log)
        return self

    def log(self) -> str:
        path = self.root / "service.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def server_token(self, user: str) -> str:
        """``jupyter secrets server-token create --user USER``, as the service's admin runs it."""
        result = subprocess.run(
            [sys.executable, "-m", "jupyter_secrets.cli", "server-token", "create", "--user",
             user], env=self.env(), capture_output=True, text=True, timeout=60, check=True)
        return result.stdout.strip()


def wait_for(url: str, process: subprocess.Popen[bytes], log: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the process exited:\n{log()}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer:\n{log()}")
