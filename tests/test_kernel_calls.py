"""A kernel's egress calls skip jupyter_server's handler machinery, and lose no check for it.

``server/kernel_calls.py`` routes a proxied or ad-hoc call that carries one of our tokens and
nothing a browser adds (no cookie, no ``Origin``, not a preflight) to the egress handlers on
a plain tornado base. These tests hold the router to exactly that set of requests, and the
fast path to the answers the server's own handlers give.
"""

from __future__ import annotations

from typing import Any

import pytest
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from jupyter_secrets.server.kernel_calls import KernelCallHandler, host_is_local
from jupyter_secrets.services.audit import AuditQuery

from .helpers import http

KERNEL_TOKEN = "jsk_" + "x" * 43  # the shape of one; routing never resolves it


def _served_by(serverapp: Any, method: str, path: str, headers: dict[str, str]) -> type:
    request = HTTPServerRequest(start_line=RequestStartLine(method, path, "HTTP/1.1"),
                                headers=HTTPHeaders(headers))
    delegate = serverapp.web_app.find_handler(request)
    return delegate.handler_class  # type: ignore[no-any-return]


def _fast(serverapp: Any, method: str, path: str, headers: dict[str, str]) -> bool:
    return issubclass(_served_by(serverapp, method, path, headers), KernelCallHandler)


KERNEL = {"Host": "127.0.0.1:8888", "Authorization": f"Bearer {KERNEL_TOKEN}"}


@pytest.mark.parametrize(("method", "path", "headers", "fast"), [
    ("POST", "proxy/openai/v1/chat/completions", KERNEL, True),
    ("GET", "proxy/openai", KERNEL, True),
    ("POST", "request", KERNEL, True),
    ("POST", "proxy/anthropic/v1/messages",
     {"Host": "localhost:8888", "x-api-key": KERNEL_TOKEN}, True),
    ("POST", "proxy/openai/v1/chat/completions", {**KERNEL, "Host": "[::1]:8888"}, True),
    # a browser's marks, a preflight, another host, no token of ours: the server's handlers
    ("POST", "proxy/openai/v1/chat/completions", {**KERNEL, "Origin": "http://127.0.0.1"}, False),
    ("POST", "proxy/openai/v1/chat/completions", {**KERNEL, "Cookie": "_xsrf=1"}, False),
    ("GET", "proxy/openai/v1/models", {**KERNEL, "cookie": "username-x=1"}, False),
    ("GET", "proxy/openai/v1/models", {**KERNEL, "origin": "null"}, False),
    ("OPTIONS", "proxy/openai/v1/chat/completions", KERNEL, False),
    ("POST", "proxy/openai/v1/chat/completions", {**KERNEL, "Host": "evil.example:8888"}, False),
    ("POST", "proxy/openai/v1/chat/completions",
     {"Host": "127.0.0.1:8888", "Authorization": "token jupyter-server-token"}, False),
    ("POST", "proxy/openai/v1/chat/completions", {"Host": "127.0.0.1:8888"}, False),
    # every other route of the API, even with a kernel token
    ("GET", "secrets", KERNEL, False),
    ("POST", "kernel-token", KERNEL, False),
    ("GET", "proxy", KERNEL, False),
])
def test_only_a_scripts_egress_call_takes_the_kernel_path(
    jp_serverapp, jp_base_url, method, path, headers, fast
):
    assert _fast(jp_serverapp, method, f"{jp_base_url}api/secrets/v1/{path}", headers) is fast


def test_jupyters_own_routes_are_untouched(jp_serverapp, jp_base_url):
    served = _served_by(jp_serverapp, "GET", f"{jp_base_url}api/kernels", KERNEL)
    assert served.__module__.startswith("jupyter_server.")


@pytest.mark.parametrize(("host", "local"), [
    ("127.0.0.1:8888", True), ("localhost", True), ("[::1]:80", True), ("127.9.9.9", True),
    ("evil.example", False), ("10.0.0.5:8888", False), ("localhost.evil.example", False),
    ("[::ffff:10.0.0.5]", False),
])
def test_the_host_rule_is_jupyter_servers(host, local):
    assert host_is_local(host, {}) is local
    assert host_is_local(host, {"allow_remote_access": True}) is True
    assert host_is_local("jupyter.internal:8888", {"local_hostnames": ["jupyter.internal"]})


@pytest.fixture
def fast_path_off(secrets_config):
    secrets_config["kernel_fast_path"] = False


@pytest.mark.usefixtures("fast_path_off")
def test_the_kernel_path_can_be_turned_off(jp_serverapp, jp_base_url):
    path = f"{jp_base_url}api/secrets/v1/proxy/openai/v1/chat/completions"
    assert not _fast(jp_serverapp, "POST", path, KERNEL)


@pytest.fixture
def deployment_authorizer(jp_server_config):
    jp_server_config["ServerApp"]["authorizer_class"] = "tests.identities.ReadOnlyAuthorizer"


@pytest.mark.usefixtures("deployment_authorizer")
async def test_a_deployments_authorizer_sees_every_kernel_call(
    jp_serverapp, jp_base_url, start_kernel, up_connection, server_url
):
    """The fast path stands aside, so the authorizer's veto of ``execute`` holds."""
    path = f"{jp_base_url}api/secrets/v1/proxy/up/report.csv"
    assert not _fast(jp_serverapp, "GET", path, KERNEL)
    _, token = await _kernel_token(start_kernel)
    r = await http("GET", f"{server_url}/proxy/up/report.csv",
                   headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403
    assert "policy does not allow execute" in r.json()["message"]


async def _kernel_token(start_kernel: Any) -> tuple[str, str]:
    """A real kernel's id and the token in its environment."""
    kernel = await start_kernel()
    printed = await kernel.check("import os; print(os.environ['JUPYTER_SECRETS_TOKEN'])")
    return kernel.kernel_id, printed.strip()


async def test_a_kernel_call_answers_as_the_servers_handlers_would(
    server_log, jp_serverapp, runtime, start_kernel, up_connection, server_url, upstream, canary
):
    """The same requests once on the kernel path and once (a cookie added) the usual way."""
    kernel_id, token = await _kernel_token(start_kernel)
    kernel = {"Authorization": f"Bearer {token}"}
    usual = {**kernel, "Cookie": "unrelated=1"}
    before = jp_serverapp.web_app.settings.get("api_last_activity")

    answers = {}
    for name, headers in (("kernel path", kernel), ("usual path", usual)):
        ok = await http("GET", f"{server_url}/proxy/up/report.csv", headers=headers)
        chat = await http("POST", f"{server_url}/proxy/up/v1/chat/completions", headers=headers,
                          json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        missing = await http("GET", f"{server_url}/proxy/nope/x", headers=headers)
        forged = await http("GET", f"{server_url}/proxy/up/report.csv",
                            headers={**headers, "Authorization": "Bearer jsk_forged"})
        answers[name] = [
            (ok.status_code, ok.headers["content-type"], ok.text),
            (chat.status_code, chat.json()["choices"][0]["message"]["content"]),
            (missing.status_code, missing.headers["X-Jupyter-Secrets-Error"],
             missing.json()["message"]),
            (forged.status_code, forged.json()["message"]),
        ]
        assert ok.headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'none'" in ok.headers["Content-Security-Policy"]

    assert answers["kernel path"] == answers["usual path"]
    assert answers["kernel path"][0] == (200, "text/csv; charset=utf-8", "name,value\nrows,2\n")
    assert answers["kernel path"][2][0] == 404 and answers["kernel path"][3][0] == 403
    assert upstream.requests[1].headers["Authorization"] == f"Bearer {canary}"
    assert jp_serverapp.web_app.settings["api_last_activity"] != before
    log = server_log()
    assert "200 GET /a%40b/api/secrets/v1/proxy/up/report.csv" in log  # the access line
    assert token not in log and canary not in log
    # each call is audited as the kernel (its user and id), the same on both paths
    events, _ = runtime.audit.page(AuditQuery.parse({"action": "proxy_call", "limit": "50"}))
    assert len(events) == 4  # two calls reached the upstream on each path
    assert {(e.user, e.kernel_id) for e in events} == {(events[0].user, kernel_id)}


async def test_a_foreign_host_is_refused_on_the_kernel_path_too(
    start_kernel, up_connection, server_url, upstream
):
    """DNS rebinding: a name that resolves to loopback but is not local is refused."""
    _, token = await _kernel_token(start_kernel)
    r = await http("GET", f"{server_url}/proxy/up/report.csv",
                   headers={"Authorization": f"Bearer {token}", "Host": "rebound.example"})
    assert r.status_code == 403
    assert upstream.requests == []
