"""Real JupyterLab + Debian Chromium for the browser tests: no downloaded browser, no mocks.

``lab`` starts ``jupyter lab`` on 127.0.0.1 with its own temp root, config, data and runtime
dirs (the venv's ``etc/jupyter`` stays active, so installed extensions load) and a fresh
master key and store. ``page`` drives Chromium through Playwright and records every
websocket frame, request body and response body, so tests can hunt for the canary.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from jupyter_secrets.keys import generate_key_text

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
JUPYTER = str(Path(sys.executable).with_name("jupyter"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives a real JupyterLab in Debian's Chromium")
    config.addinivalue_line(
        "markers", "slow: takes tens of seconds (still part of the suite; -m 'not slow' skips)")


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    store_url: str
    master_key: str
    log_path: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.url}api/secrets/v1/{path}", headers=self.headers,
                             timeout=30, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_json(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload), "utf-8")


QUIET = {"@jupyterlab/apputils-extension:announcements": True}


@pytest.fixture
def disabled_extensions() -> dict[str, bool]:
    """Lab extensions to turn off; parametrize it to run without jupyter-secrets' front-end."""
    return dict(QUIET)


APPS = {"lab": "LabApp", "notebook": "JupyterNotebookApp"}


@pytest.fixture
def frontend() -> str:
    """Which front-end to serve: ``lab`` (JupyterLab 4) or ``notebook`` (Notebook 7)."""
    return "lab"


@contextmanager
def start_lab(tmp_path: Path, *, disabled_extensions: dict[str, bool] | None = None,
              frontend: str = "lab", extra_args: list[str] | None = None,
              port: int | None = None, service: tuple[str, str] | None = None) -> Iterator[Lab]:
    """``jupyter lab`` (or ``notebook``) on 127.0.0.1 with its own dirs, key and store; the
    browser tests' fixture and the panel benchmark both start the server this way.

    ``service=(url, server token)``: client mode instead, with no key and no store here (the
    token goes in the environment, as the README says, never on the command line)."""
    app = APPS[frontend]
    port, token = port or _free_port(), secrets.token_hex(24)
    root, config, data, runtime = (tmp_path / d for d in ("root", "config", "data", "runtime"))
    settings = tmp_path / "lab-settings"
    for directory in (root, config, data, runtime, settings):
        directory.mkdir()
    # Quiet, deterministic Lab: no news pop-up; widget state saved into the notebook, so
    # the saved-file canary check covers every widget's state too.
    _write_json(config / "labconfig" / "page_config.json",
                {"disabledExtensions": disabled_extensions or dict(QUIET)})
    _write_json(settings / "@jupyter-widgets" / "jupyterlab-manager" / "plugin.jupyterlab-settings",
                {"saveState": True})
    url = f"http://127.0.0.1:{port}/"
    key = generate_key_text() if service is None else ""
    store_url = f"sqlite:///{tmp_path / 'store' / 'secrets.db'}" if service is None else ""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JPY_"))},
        "HOME": str(tmp_path), "IPYTHONDIR": str(tmp_path / "ipython"),
        "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_DATA_DIR": str(data),
        "JUPYTER_RUNTIME_DIR": str(runtime), "JUPYTER_PLATFORM_DIRS": "1",
    }
    if service is None:
        env.update(JUPYTER_SECRETS_KEY=key, JUPYTER_SECRETS_STORE_URL=store_url)
    else:
        env.update(JUPYTER_SECRETS_SERVICE_URL=service[0], JUPYTER_SECRETS_SERVICE_TOKEN=service[1])
    log_path = tmp_path / "lab.log"
    args = [JUPYTER, frontend, "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}", f"--{app}.user_settings_dir={settings}",
            f"--{app}.workspaces_dir={tmp_path / 'workspaces'}",
            f"--{app}.expose_app_in_browser=True"]
    if app != APPS["notebook"]:
        # Notebook 7's pages are served beside JupyterLab's (two front-ends, one server).
        # (Given twice, traitlets would not read the flag as True.)
        args.append(f"--{APPS['notebook']}.expose_app_in_browser=True")
    if os.getuid() == 0:
        args.append("--allow-root")
    args += extra_args or []
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=tmp_path)
    lab = Lab(url, token, root, store_url, key, log_path)
    try:
        _wait_until_up(lab, process)
        yield lab
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def server_args() -> list[str]:
    """Extra command-line options for the server; parametrize it (e.g. to configure roles)."""
    return []


@pytest.fixture
def lab(tmp_path: Path, disabled_extensions: dict[str, bool], frontend: str,
        server_args: list[str]) -> Iterator[Lab]:
    if frontend == "notebook":
        pytest.importorskip("notebook", reason="Notebook 7 is optional: pip install notebook")
    with start_lab(tmp_path, disabled_extensions=disabled_extensions, frontend=frontend,
                   extra_args=server_args) as lab:
        yield lab


class LabFailed(RuntimeError):
    """The server did not come up; the message holds the end of its log."""


def _wait_until_up(lab: Lab, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LabFailed(f"jupyter lab exited with {process.returncode}:\n{lab.log()[-4000:]}")
        try:  # GET info answers in both modes (in client mode it is all this server serves)
            if lab.api("GET", "info").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise LabFailed(f"jupyter lab did not answer within 60 s:\n{lab.log()[-4000:]}")


@dataclass
class Traffic:
    """Everything that crossed the browser's network boundary, for canary hunts."""

    frames: list[tuple[str, str]] = field(default_factory=list)  # (websocket url, payload)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, url, body)
    sent: list[Any] = field(default_factory=list)  # Playwright's Request objects (headers)
    responses: list[tuple[str, str]] = field(default_factory=list)  # (url, body)
    console: list[str] = field(default_factory=list)


def _text(payload: str | bytes) -> str:
    return payload.decode("latin-1") if isinstance(payload, bytes) else payload


def watch(target: Any, traffic: Traffic) -> Any:
    """Record every websocket frame, request body, response body and console line of a page,
    or (given a browser context) of every page in it, popups included from their first
    request."""

    def on_websocket(ws: Any) -> None:
        ws.on("framesent", lambda p: traffic.frames.append((ws.url, _text(p))))
        ws.on("framereceived", lambda p: traffic.frames.append((ws.url, _text(p))))

    def on_response(response: Any) -> None:
        if "/static/" in response.url or "/lab/extensions/" in response.url:
            return  # build artefacts, served from disk: they cannot hold a value
        try:
            traffic.responses.append((response.url, _text(response.body())))
        except Exception as error:  # redirects and aborted requests have no body
            traffic.responses.append((response.url, f"<no body: {type(error).__name__}>"))

    def on_request(request: Any) -> None:
        traffic.requests.append((request.method, request.url,
                                 _text(request.post_data_buffer or b"")))
        traffic.sent.append(request)

    def on_page(page: Any) -> None:
        page.on("websocket", on_websocket)
        page.on("console", lambda m: traffic.console.append(f"{m.type}: {m.text}"))

    target.on("request", on_request)
    target.on("response", on_response)
    if hasattr(target, "pages"):  # a context: each page's websockets and console
        target.on("page", on_page)
        for page in target.pages:
            on_page(page)
    else:
        on_page(target)
    return target


@pytest.fixture
def browser_page(lab: Lab) -> Iterator[tuple[Any, Traffic]]:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.fail(f"Debian's Chromium is missing at {CHROMIUM}: apt-get install chromium "
                    "(the browser tests never download a browser).")
    from playwright.sync_api import sync_playwright

    traffic = Traffic()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = watch(context.new_page(), traffic)
        try:
            yield page, traffic
        finally:
            context.close()
            browser.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
