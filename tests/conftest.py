"""Real Jupyter server fixtures (pytest-jupyter) with the extension on a temp store."""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

pytest_plugins = ["pytest_jupyter.jupyter_server", "tests.postgres", "tests.hub"]

API = ("api", "secrets", "v1")


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "secrets.db"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "master.key"


@pytest.fixture
def secrets_config(store_path: Path, key_file: Path) -> dict[str, Any]:
    """Traits of SecretsExtensionApp for the test server; tests may add to it."""
    return {"store_url": f"sqlite:///{store_path}", "key_file": str(key_file)}


@pytest.fixture
def jp_server_config(secrets_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_secrets": True, "jupyter_server_terminals": False},
        },
        "SecretsExtensionApp": secrets_config,
    }


@pytest.fixture
def multi_user(secrets_config: dict[str, Any], jp_server_config: dict[str, Any]) -> None:
    """Serve alice (admin) and bob (non-admin) instead of the single token identity."""
    jp_server_config["ServerApp"]["identity_provider_class"] = (
        "tests.identities.NamedTokenIdentityProvider"
    )
    secrets_config["admin_users"] = {"alice"}


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their master key explicitly; never inherit one from the shell."""
    monkeypatch.delenv("JUPYTER_SECRETS_KEY", raising=False)
    monkeypatch.delenv("JUPYTER_SECRETS_STORE_URL", raising=False)
    monkeypatch.delenv("JUPYTER_SECRETS_KEY_FILE", raising=False)


@pytest.fixture
def master_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh master key in JUPYTER_SECRETS_KEY (instead of the key file)."""
    from jupyter_secrets.keys import generate_key_text

    key = generate_key_text()
    monkeypatch.setenv("JUPYTER_SECRETS_KEY", key)
    return key


@pytest.fixture
def canary() -> str:
    """A value that must never show up anywhere but the ciphertext store."""
    return f"canary-{secrets.token_hex(16)}"


class Responses(list[str]):
    """Every response body the tests received, to be searched for canaries."""


Api = Callable[..., Awaitable[tuple[int, Any]]]


@pytest.fixture
def responses() -> Responses:
    return Responses()


@pytest.fixture
def api(jp_fetch: Any, responses: Responses) -> Api:
    """``await api("POST", "secrets", body={...})`` -> (status, parsed JSON or None)."""

    async def call(
        method: str,
        *path: str,
        body: Any = None,
        raw: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        payload = raw if raw is not None else (None if body is None else json.dumps(body))
        if payload is None and method in ("POST", "PUT", "PATCH"):
            payload = ""
        try:
            response = await jp_fetch(
                *API, *path, method=method, body=payload, headers=headers or {},
                params=params, raise_error=False, allow_nonstandard_methods=True,
            )
        except HTTPClientError as error:  # pragma: no cover - raise_error=False
            response = error.response
        text = response.body.decode("utf-8") if response.body else ""
        responses.append(text)
        responses.append(json.dumps(dict(response.headers)))
        return response.code, (json.loads(text) if text else None)

    return call


@pytest.fixture
def server_log(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> Callable[[], str]:
    """Everything logged so far in this test, server start-up included.

    Request it before the server fixtures: while the server initialises, its logger
    still writes to stderr (pytest-jupyter reroutes it to logging only afterwards).
    """
    caplog.set_level(logging.DEBUG)
    stderr: list[str] = []

    def text() -> str:
        captured = capsys.readouterr()
        stderr.extend([captured.out, captured.err])
        records = [*caplog.get_records("setup"), *caplog.get_records("call")]
        lines = [f"{r.levelname} {r.name} {r.getMessage()}" for r in records]
        return "\n".join([*stderr, *lines])

    return text


@pytest.fixture
def upstream(canary: str) -> Iterator[Any]:
    """A real HTTP upstream on loopback that expects the canary as its API key."""
    from .upstream import start_upstream

    server = start_upstream(api_key=canary, stream_delay=0.05)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(jp_serverapp: Any) -> dict[str, Any]:
    """The running extension's services (to set up state without going through REST)."""
    return jp_serverapp.web_app.settings


@pytest.fixture
def runtime(jp_serverapp: Any) -> Any:
    """The running extension's runtime (to set up state without going through REST)."""
    return jp_serverapp.web_app.settings["jupyter_secrets_runtime"]


@pytest.fixture
def server_root(jp_serverapp: Any, jp_base_url: str, http_server: Any) -> str:
    """The Jupyter server's real URL; ``http_server`` makes pytest-jupyter listen on its port."""
    return f"http://127.0.0.1:{jp_serverapp.port}{jp_base_url}"


@pytest.fixture
def server_url(server_root: str) -> str:
    """The secrets API's real URL."""
    return f"{server_root}api/secrets/v1"


@pytest.fixture
def auth(jp_serverapp: Any) -> dict[str, str]:
    return {"Authorization": f"token {jp_serverapp.identity_provider.token}"}


@pytest.fixture
def up_connection(runtime: Any, upstream: Any, canary: str) -> Any:
    """Connection ``up`` to the loopback upstream, bearer auth with the canary as key."""
    return runtime.connections.create("admin", {
        "name": "up", "preset": "http", "base_url": upstream.url, "value": canary,
        "auth": {"scheme": "bearer"}})


@pytest.fixture
def example_token(runtime: Any, upstream: Any, canary: str) -> str:
    """Secret EXAMPLE_TOKEN (the canary), allowed to go to the loopback upstream only."""
    host = f"127.0.0.1:{upstream.port}"
    runtime.secrets.create("admin", "EXAMPLE_TOKEN", canary, allowed_hosts=[host])
    return host


@pytest.fixture
def example_token_everywhere(runtime: Any, example_token: str) -> str:
    """EXAMPLE_TOKEN allowed in every placement (query string, path and body too)."""
    runtime.secrets.update_metadata("admin", "EXAMPLE_TOKEN",
                                    {"placements": ["header", "query", "path", "body"]})
    return example_token


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for CLI subprocesses: isolated Jupyter dirs, a temp store, a fresh key."""
    from jupyter_secrets.keys import generate_key_text

    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        JUPYTER_SECRETS_STORE_URL=f"sqlite:///{tmp_path}/store/secrets.db",
        JUPYTER_SECRETS_KEY=generate_key_text(),
    )
    return env


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real ``jupyter server`` subprocess shared by a module's tests (see tests/live.py)."""
    from .live import LiveServer

    server = LiveServer(tmp_path_factory.mktemp("live")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def live_upstream() -> Iterator[Any]:
    """A loopback upstream shared by a module's tests (its key: the upstream's default)."""
    from .upstream import start_upstream

    server = start_upstream()
    try:
        yield server
    finally:
        server.stop()



@pytest.fixture
def start_kernel(jp_fetch: Any, jp_serverapp: Any, http_server: Any) -> Iterator[Any]:
    """Start kernels through POST /api/kernels (as a given user), stop them afterwards."""
    from .kernels import Kernel

    kernels: list[Kernel] = []

    async def start(headers: dict[str, str] | None = None) -> Kernel:
        response = await jp_fetch("api", "kernels", method="POST", body=json.dumps({}),
                                  headers=headers or {})
        kernel = await Kernel(jp_serverapp, json.loads(response.body)["id"]).start()
        kernels.append(kernel)
        return kernel

    yield start
    for kernel in kernels:
        kernel.stop()
