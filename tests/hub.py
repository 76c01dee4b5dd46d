"""A real JupyterHub for the tests: the documented config, real OS users, a real proxy.

One Hub per module (``jupyterhub`` fixture), started as root because the local process
spawner switches to each user's OS account:

- configurable-http-proxy from npm (``make hub-deps`` puts it in ``.hub-deps/``, ignored by
  git) on loopback ports; the Hub's database and cookie secret in a private temp dir;
- ``docs/jupyterhub_config.py`` itself, with only its site constants replaced (service
  Python, OS user, ports, names): the services entry, custom scopes, roles, groups and the
  client-mode environment of users' servers are exactly what the docs tell admins to copy;
- alice (Hub admin, secrets admin, group finance) and bob (group analysts) logging in with
  JupyterHub's SharedPasswordAuthenticator; both are OS users made for the test (removed
  after), and so is the secrets service's own user;
- the secrets service, started by the Hub as its own user, reading its key, admin token and
  PostgreSQL store URL from an environment file only that user can read;
- users' servers: ``python -m jupyterhub.singleuser`` with the shared Python of
  ``tests/osusers.py`` (its ``etc/jupyter`` and ``share/jupyter`` point at this checkout's
  venv, so the installed server extensions and JupyterLab load as in a normal install).

Helpers log a user in with the Hub's login form (httpx, cookies), make Hub API tokens, start
servers and kernels, and run code in a kernel through its connection file (as root).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from jupyter_secrets.keys import generate_key_text

from .live import free_port
from .osusers import OSUser, os_user, shared_python

REPO = Path(__file__).resolve().parent.parent
DOCS_CONFIG = REPO / "docs" / "jupyterhub_config.py"
DOCS_PAGE = REPO / "docs" / "team-deployment.md"
CHP = REPO / ".hub-deps" / "node_modules" / ".bin" / "configurable-http-proxy"
VENV = Path(sys.prefix)
SERVICE = "secrets"
START_TIMEOUT = 120.0


@dataclass(frozen=True)
class HubUser:
    os: OSUser
    password: str = field(repr=False)

    @property
    def name(self) -> str:
        return self.os.name


def docs_config(values: dict[str, object]) -> str:
    """``docs/jupyterhub_config.py`` with its site constants (``NAME = ...`` lines) replaced."""
    text = DOCS_CONFIG.read_text()
    for name, value in values.items():
        pattern = re.compile(rf"^{name}(: [^=]+)? = .*$", re.MULTILINE)
        text, count = pattern.subn(lambda m, n=name, v=value: f"{n}{m[1] or ''} = {v!r}", text)
        assert count == 1, f"docs/jupyterhub_config.py must define {name} once (found {count})"
    return text


def docs_block(marker: str) -> str:
    """The fenced code block right after ``<!-- marker -->`` in docs/team-deployment.md."""
    text = DOCS_PAGE.read_text()
    match = re.search(rf"<!-- {re.escape(marker)} -->\n( *)```\w*\n(.*?)\n\1```", text, re.S)
    assert match, f"no code block marked {marker!r} in {DOCS_PAGE.name}"
    indent = len(match[1])
    return "\n".join(line[indent:] for line in match[2].splitlines()) + "\n"


def hub_python(root: Path) -> Path:
    """The shared Python, plus this checkout's Jupyter config and data (extensions, Lab)."""
    python = shared_python(root)
    venv = python.parent.parent
    for part in ("etc/jupyter", "share/jupyter"):
        (venv / part).parent.mkdir(parents=True, exist_ok=True)
        (venv / part).symlink_to(VENV / part)
    return python


def _own(path: Path, user: OSUser, mode: int) -> None:
    os.chown(path, user.uid, user.gid)
    path.chmod(mode)


@dataclass
class Hub:
    root: Path
    url: str  # the public URL (the proxy), with a trailing slash
    alice: HubUser
    bob: HubUser
    service_user: OSUser
    master_key: str = field(repr=False)
    admin_token: str = field(repr=False)
    store_url: str = field(repr=False)
    env_file: Path
    process: subprocess.Popen[bytes] | None = None
    tokens: dict[str, str] = field(default_factory=dict, repr=False)

    # -- URLs and logs -----------------------------------------------------------------------

    @property
    def hub_api(self) -> str:
        return f"{self.url}hub/api"

    @property
    def service_url(self) -> str:
        return f"{self.url}services/{SERVICE}/"

    @property
    def service_api(self) -> str:
        return f"{self.service_url}api/secrets/v1"

    @property
    def service_admin(self) -> dict[str, str]:
        """The service's own admin token (issue 10's break-glass credential)."""
        return {"Authorization": f"token {self.admin_token}"}

    def log(self) -> str:
        path = self.root / "hub.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- logging in, tokens, servers ----------------------------------------------------------

    def login(self, user: HubUser) -> httpx.Client:
        """A client holding the user's Hub login cookie, from the Hub's login form."""
        client = httpx.Client(base_url=self.url, follow_redirects=True, timeout=60,
                              trust_env=False)
        form = client.get("hub/login")
        match = re.search(r'name="_xsrf" value="([^"]+)"', form.text)
        assert match, f"no _xsrf field in the Hub's login form:\n{form.text[:2000]}"
        page = client.post("hub/login", params={"next": "/hub/home"}, data={
            "username": user.name, "password": user.password, "_xsrf": match[1]})
        assert page.url.path == "/hub/home", (page.status_code, page.url, page.text[:2000])
        return client

    def token(self, user: HubUser, *, scopes: list[str] | None = None,
              note: str = "tests") -> str:
        """A Hub API token of the user's (what a person's script holds), made with the login
        cookie and XSRF, as the Hub's token page does. Cached per user and scopes."""
        key = f"{user.name}:{','.join(scopes or [])}"
        if key not in self.tokens:
            client = self.login(user)
            try:
                body: dict[str, Any] = {"note": note, "expires_in": 3600}
                if scopes is not None:
                    body["scopes"] = scopes
                response = client.post(
                    f"hub/api/users/{user.name}/tokens", json=body,
                    headers={"X-XSRFToken": client.cookies.get("_xsrf", path="/hub/") or ""})
            finally:
                client.close()
            assert response.status_code == 201, (response.status_code, response.text)
            self.tokens[key] = response.json()["token"]
        return self.tokens[key]

    def auth(self, user: HubUser, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"token {self.token(user, **kwargs)}"}

    def start_server(self, user: HubUser) -> str:
        """Start the user's server (if needed) and wait until the Hub says it is ready;
        returns its URL."""
        headers = self.auth(user)
        response = httpx.post(f"{self.hub_api}/users/{user.name}/server", headers=headers,
                              timeout=60, trust_env=False)
        assert response.status_code in (201, 202, 400), (response.status_code, response.text)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            model = httpx.get(f"{self.hub_api}/users/{user.name}", headers=headers,
                              timeout=30, trust_env=False).json()
            server = model.get("servers", {}).get("")
            if server and server.get("ready"):
                return f"{self.url.rstrip('/')}{server['url']}"
            time.sleep(0.5)
        raise AssertionError(f"{user.name}'s server did not start:\n{self.log()[-6000:]}")

    # -- kernels ------------------------------------------------------------------------------

    def start_kernel(self, user: HubUser) -> str:
        server = self.start_server(user)
        response = httpx.post(f"{server}api/kernels", headers=self.auth(user), json={},
                              timeout=60, trust_env=False)
        assert response.status_code == 201, (response.status_code, response.text)
        return str(response.json()["id"])

    def connection_file(self, user: HubUser, kernel_id: str) -> Path:
        path = user.os.home / ".local/share/jupyter/runtime" / f"kernel-{kernel_id}.json"
        deadline = time.monotonic() + 30
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert path.exists(), f"no connection file for kernel {kernel_id} of {user.name}"
        return path

    def run(self, user: HubUser, kernel_id: str, code: str, timeout: float = 120) -> str:
        """Run code in the user's kernel (as notebook code would); what it printed.
        A failing cell fails the test with its traceback."""
        client = BlockingKernelClient()
        client.load_connection_file(self.connection_file(user, kernel_id))
        client.start_channels()
        outputs: list[str] = []
        try:
            client.wait_for_ready(timeout=60)
            reply = client.execute_interactive(
                code, timeout=timeout, output_hook=lambda m: outputs.append(
                    m["content"].get("text", "")
                    + "\n".join(m["content"].get("traceback", []))))
        finally:
            client.stop_channels()
        text = re.sub(r"\x1b\[[0-9;]*m", "", "".join(outputs)).strip()  # no colours
        assert reply["content"]["status"] == "ok", text
        return text

    def run_json(self, user: HubUser, kernel_id: str, code: str, timeout: float = 120) -> Any:
        """Run code whose last printed line is JSON; that, parsed."""
        return json.loads(self.run(user, kernel_id, code, timeout).splitlines()[-1])

    def stop_kernel(self, user: HubUser, kernel_id: str) -> None:
        server = self.start_server(user)
        httpx.delete(f"{server}api/kernels/{kernel_id}", headers=self.auth(user), timeout=60,
                     trust_env=False)

    # -- processes ----------------------------------------------------------------------------

    def service_processes(self) -> list[tuple[int, int]]:
        """(pid, uid) of the Hub's children running the secrets service."""
        assert self.process is not None
        found = []
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                status = (proc / "status").read_text()
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
                ppid = int(re.search(r"^PPid:\s+(\d+)", status, re.M)[1])  # type: ignore[index]
                uid = int(re.search(r"^Uid:\s+(\d+)", status, re.M)[1])  # type: ignore[index]
                if ppid == self.process.pid and b"jupyter_secrets.cli serve" in cmdline:
                    found.append((int(proc.name), uid))
        return found

    def server_env(self, user: HubUser) -> dict[str, str]:
        """The environment of the user's running server (read as root from /proc)."""
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                if proc.stat().st_uid != user.os.uid:
                    continue
                if b"jupyterhub.singleuser" not in (proc / "cmdline").read_bytes():
                    continue
                pairs = (proc / "environ").read_bytes().decode().split("\0")
                return dict(p.split("=", 1) for p in pairs if "=" in p)
        raise AssertionError(f"no running server of {user.name}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # stops users' servers, the service, the proxy
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        proxy_pid = self.root / "jupyterhub-proxy.pid"
        if proxy_pid.exists():
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(proxy_pid.read_text().strip()), signal.SIGTERM)


def _write_env_file(path: Path, owner: OSUser, values: dict[str, str]) -> None:
    """The service's environment file, as the docs describe it: sh syntax, mode 600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    _own(path, owner, 0o600)
    path.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items()))


def _quiet_lab(user: OSUser) -> None:
    """No news pop-up in the user's JupyterLab (it takes focus from the tests' typing)."""
    labconfig = user.home / ".jupyter" / "labconfig"
    labconfig.mkdir(parents=True)
    (labconfig / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    subprocess.run(["chown", "-R", f"{user.name}:{user.name}", str(user.home / ".jupyter")],
                   check=True)


def _fixture_config(hub: Hub, python: Path, ports: dict[str, int]) -> str:
    """What a test Hub adds after the documented config: ports, paths, the login."""
    admins = [hub.alice.name]
    settings = {
        "HUB_PUBLIC_URL": hub.url.rstrip("/"),
        "SECRETS_PYTHON": str(python),
        "SECRETS_USER": hub.service_user.name,
        "SECRETS_HOME": str(hub.service_user.home),
        "SECRETS_ENV_FILE": str(hub.env_file),
        "SECRETS_PORT": ports["service"],
        "SECRETS_ADMINS": admins,
        "GROUPS": {"analysts": {"users": [hub.bob.name]},
                   "finance": {"users": [hub.alice.name]}},
    }
    extra = f"""
# -- the test Hub: loopback ports, private paths, two users with passwords ------------------
c.JupyterHub.bind_url = "http://127.0.0.1:{ports['proxy']}/"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{ports['hub']}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{ports['proxy_api']}"
c.ConfigurableHTTPProxy.command = [{str(CHP)!r}]
c.JupyterHub.db_url = "sqlite:///{hub.root}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{hub.root}/jupyterhub_cookie_secret"
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {hub.bob.password!r}
c.SharedPasswordAuthenticator.admin_password = {hub.alice.password!r}
c.Authenticator.admin_users = {set(admins)!r}
c.Authenticator.allowed_users = {{{hub.alice.name!r}, {hub.bob.name!r}}}
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [{str(python)!r}, "-m", "jupyterhub.singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.args = ["--LabApp.expose_app_in_browser=True"]
c.Spawner.start_timeout = {int(START_TIMEOUT)}
c.Spawner.http_timeout = {int(START_TIMEOUT)}
"""
    return docs_config(settings) + extra


@contextlib.contextmanager
def start_hub(root: Path, store_url: str) -> Iterator[Hub]:
    if os.getuid() != 0:
        pytest.fail("The JupyterHub tests run as root (the local process spawner switches "
                    "to each user's OS account), as CI does.", pytrace=False)
    if not CHP.exists():
        pytest.fail(f"configurable-http-proxy is missing at {CHP}: run `make hub-deps` (npm "
                    "install into .hub-deps/; `make test` does it).", pytrace=False)
    root.chmod(0o700)
    ports = {name: free_port() for name in ("proxy", "hub", "proxy_api", "service")}
    with contextlib.ExitStack() as stack:
        python = hub_python(Path(f"/tmp/jsecrets-hub-{secrets.token_hex(4)}"))
        stack.callback(shutil.rmtree, python.parent.parent.parent, ignore_errors=True)
        alice = HubUser(stack.enter_context(os_user("alice")), secrets.token_urlsafe(32))
        bob = HubUser(stack.enter_context(os_user("bob")), secrets.token_urlsafe(12))
        service_user = stack.enter_context(os_user("jssvc"))
        for user in (alice, bob):
            _quiet_lab(user.os)
        hub = Hub(root=root, url=f"http://127.0.0.1:{ports['proxy']}/", alice=alice, bob=bob,
                  service_user=service_user, master_key=generate_key_text(),
                  admin_token=secrets.token_hex(32), store_url=store_url,
                  env_file=service_user.home / "env")
        _write_env_file(hub.env_file, service_user, {
            "JUPYTER_SECRETS_KEY": hub.master_key,
            "JUPYTER_SECRETS_STORE_URL": hub.store_url,
            "JUPYTER_SECRETS_ADMIN_TOKEN": hub.admin_token,
        })
        config = root / "jupyterhub_config.py"
        config.write_text(_fixture_config(hub, python, ports))
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(root)}
        with (root / "hub.log").open("ab") as log:
            hub.process = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(config)], env=env, cwd=root,
                stdout=log, stderr=subprocess.STDOUT)
        stack.callback(hub.stop)
        _wait_until_up(hub)
        yield hub


def _wait_until_up(hub: Hub) -> None:
    """The Hub answers its API and the proxy routes to the secrets service."""
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


@pytest.fixture(scope="module")
def jupyterhub(tmp_path_factory: pytest.TempPathFactory, postgres_cluster: Any) -> Iterator[Hub]:
    """One real JupyterHub with the secrets service (on PostgreSQL) for a module's tests."""
    store_url = postgres_cluster.create_database()
    with start_hub(tmp_path_factory.mktemp("hub"), store_url) as hub:
        yield hub
