"""A small real JupyterHub for the browser tests of the Hub login in the sidebar and panel.

Real parts only: ``jupyterhub`` itself with configurable-http-proxy (``make hub-deps`` puts
it in ``.hub-deps/``), the secrets service as a Hub-managed service (``jupyter secrets
serve`` with the Hub's OAuth, custom scopes and roles as in the team deployment docs),
alice's JupyterLab (``jupyterhub.singleuser``) in client mode. What it leaves out, to start
in seconds: OS users (the Hub's own test spawner runs alice's server as the Hub's user),
PostgreSQL (the service's store is SQLite) and the attacker (tests/hub.py and
tests/test_hub.py run the whole deployment).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from jupyter_secrets.keys import generate_key_text

from ..live import free_port

REPO = Path(__file__).resolve().parents[2]
CHP = REPO / ".hub-deps" / "node_modules" / ".bin" / "configurable-http-proxy"
SERVICE = "secrets"
START_TIMEOUT = 120.0
USE_SCOPE, ADMIN_SCOPE = "custom:secrets:use", "custom:secrets:admin"


@dataclass
class LeanHub:
    root: Path
    url: str  # the public URL (the proxy), with a trailing slash
    password: str = field(repr=False)
    master_key: str = field(repr=False)
    admin_token: str = field(repr=False)
    process: subprocess.Popen[bytes] | None = None

    @property
    def service_url(self) -> str:
        return f"{self.url}services/{SERVICE}/"

    @property
    def service_api(self) -> str:
        return f"{self.service_url}api/secrets/v1"

    @property
    def store_url(self) -> str:
        return f"sqlite:///{self.root / 'service' / 'secrets.db'}"

    @property
    def service_admin(self) -> dict[str, str]:
        return {"Authorization": f"token {self.admin_token}"}

    def log(self) -> str:
        """The Hub's log, with the service's and alice's server's (their output goes there)."""
        path = self.root / "hub.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def home(self, user: str) -> Path:
        return self.root / "home" / user

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # stops the servers, the service, the proxy
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        pid_file = self.root / "proxy.pid"
        if pid_file.exists():
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)


def _config(hub: LeanHub, ports: dict[str, int]) -> str:
    python = sys.executable
    public = hub.url.rstrip("/")
    jupyter_dirs = {  # alice's server: its own config, data and runtime dirs
        "JUPYTER_CONFIG_DIR": str(hub.root / "alice-jupyter" / "config"),
        "JUPYTER_DATA_DIR": str(hub.root / "alice-jupyter" / "data"),
        "JUPYTER_RUNTIME_DIR": str(hub.root / "alice-jupyter" / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    service_env = {
        "JUPYTER_SECRETS_KEY": hub.master_key,
        "JUPYTER_SECRETS_STORE_URL": hub.store_url,
        "JUPYTER_SECRETS_ADMIN_TOKEN": hub.admin_token,
        "JUPYTER_CONFIG_DIR": str(hub.root / "service" / "config"),
        "JUPYTER_DATA_DIR": str(hub.root / "service" / "data"),
    }
    args = ["--LabApp.expose_app_in_browser=True"]
    if os.getuid() == 0:
        args.append("--allow-root")
    return f"""
c = get_config()  # noqa: F821
c.JupyterHub.bind_url = "{hub.url}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{ports['hub']}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{ports['proxy_api']}"
c.ConfigurableHTTPProxy.command = [{str(CHP)!r}]
c.ConfigurableHTTPProxy.pid_file = {str(hub.root / 'proxy.pid')!r}
c.JupyterHub.db_url = "sqlite:///{hub.root}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{hub.root}/jupyterhub_cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {hub.password!r}
c.Authenticator.allowed_users = {{"alice"}}
c.Authenticator.admin_users = {{"alice"}}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {str(hub.root / 'home' / '{username}')!r}
c.Spawner.cmd = [{python!r}, "-m", "jupyterhub.singleuser"]
c.Spawner.args = {args!r}
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = {int(START_TIMEOUT)}
c.Spawner.http_timeout = {int(START_TIMEOUT)}
c.Spawner.environment = {{
    "JUPYTER_SECRETS_SERVICE_URL": "{public}/services/{SERVICE}/",
    **{jupyter_dirs!r},
}}
c.JupyterHub.services = [{{
    "name": "{SERVICE}",
    "url": "http://127.0.0.1:{ports['service']}",
    "command": [{python!r}, "-m", "jupyter_secrets.cli", "serve"],
    "environment": {service_env!r},
    "oauth_client_allowed_scopes": ["{USE_SCOPE}", "{ADMIN_SCOPE}"],
    "oauth_no_confirm": True,
    "display": False,
}}]
c.JupyterHub.custom_scopes = {{
    "{USE_SCOPE}": {{"description": "Use secrets by name."}},
    "{ADMIN_SCOPE}": {{"description": "Manage secrets.", "subscopes": ["{USE_SCOPE}"]}},
}}
c.JupyterHub.load_roles = [
    {{"name": "user", "scopes": ["self", "access:services!service={SERVICE}", "{USE_SCOPE}"]}},
    {{"name": "server", "scopes": ["users:activity!user", "access:servers!server",
                                   "access:services!service={SERVICE}", "{USE_SCOPE}"]}},
    {{"name": "secrets-admin", "scopes": ["access:services!service={SERVICE}", "{ADMIN_SCOPE}"],
      "users": ["alice"]}},
]
"""


@contextlib.contextmanager
def start_lean_hub(root: Path) -> Iterator[LeanHub]:
    if not CHP.exists():
        pytest.fail(f"configurable-http-proxy is missing at {CHP}: run `make hub-deps` (npm "
                    "install into .hub-deps/; `make test` does it).", pytrace=False)
    ports = {name: free_port() for name in ("proxy", "hub", "proxy_api", "service")}
    hub = LeanHub(root=root, url=f"http://127.0.0.1:{ports['proxy']}/",
                  password=secrets.token_urlsafe(16), master_key=generate_key_text(),
                  admin_token=secrets.token_hex(32))
    for sub in ("service/config", "service/data", "alice-jupyter/config/labconfig",
                "alice-jupyter/data", "alice-jupyter/runtime", "home/alice"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    # No news pop-up in alice's JupyterLab (it takes focus from typing).
    (root / "alice-jupyter/config/labconfig/page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    config = root / "jupyterhub_config.py"
    config.write_text(_config(hub, ports))
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LANG": "C.UTF-8",
           "HOME": str(root)}
    with (root / "hub.log").open("ab") as log:
        hub.process = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(config)],
                                       env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(hub)
        yield hub
    finally:
        hub.stop()


def _wait_until_up(hub: LeanHub) -> None:
    """The Hub answers and its proxy routes to the secrets service."""
    assert hub.process is not None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if hub.process.poll() is not None:
            raise RuntimeError(f"JupyterHub exited ({hub.process.returncode}):\n"
                               f"{hub.log()[-8000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{hub.service_api}/info", headers=hub.service_admin, timeout=5,
                         trust_env=False).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"JupyterHub or the secrets service did not come up:\n"
                       f"{hub.log()[-8000:]}")
