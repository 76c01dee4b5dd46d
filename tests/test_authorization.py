"""Who may do what, for every registered route x method x caller, in one table.

The route list comes from the API itself (``jupyter_secrets.api.ROUTES``): a new route or
method without a row here fails ``test_every_route_and_method_has_a_row``. Callers: alice
(admin), bob (user), anonymous, a kernel token of alice's kernel, one of bob's kernel, and a
kernel token whose kernel has shut down. Every case runs against a real server subprocess
with real kernels, from a known state.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tornado import web

from jupyter_secrets.api import ROUTES

CALLERS = ("admin", "user", "anonymous", "admin_kernel", "user_kernel", "revoked")
METHODS = ("get", "head", "post", "put", "patch", "delete", "options")

# (method, route pattern, body): expected status for each caller, in CALLERS order.
# A kernel acts as its user for reading and calling, but never manages anything (values,
# metadata, connections, the audit log, scans): that needs a person's session.
MATRIX: dict[tuple[str, str, str], tuple[int, int, int, int, int, int]] = {
    ("GET", "secrets", ""): (200, 200, 403, 200, 200, 403),
    ("POST", "secrets", "create"): (201, 403, 403, 403, 403, 403),
    ("PUT", "secrets", "batch"): (200, 403, 403, 403, 403, 403),
    ("GET", "secrets/(?P<name>[^/]+)", ""): (200, 200, 403, 200, 200, 403),
    ("PUT", "secrets/(?P<name>[^/]+)", "value"): (200, 403, 403, 403, 403, 403),
    ("PATCH", "secrets/(?P<name>[^/]+)", "description"): (200, 403, 403, 403, 403, 403),
    ("PATCH", "secrets/(?P<name>[^/]+)", "hosts"): (200, 403, 403, 403, 403, 403),
    ("PATCH", "secrets/(?P<name>[^/]+)", "placements"): (200, 403, 403, 403, 403, 403),
    ("DELETE", "secrets/(?P<name>[^/]+)", "force"): (204, 403, 403, 403, 403, 403),
    ("GET", "me", ""): (200, 200, 403, 200, 200, 403),
    ("GET", "audit", ""): (200, 403, 403, 403, 403, 403),
    ("GET", "openapi.json", ""): (200, 200, 403, 200, 200, 403),
    ("GET", "presets", ""): (200, 200, 403, 200, 200, 403),
    ("GET", "connections", ""): (200, 200, 403, 200, 200, 403),
    ("POST", "connections", "connection"): (201, 403, 403, 403, 403, 403),
    ("GET", "connections/(?P<name>[^/]+)", ""): (200, 200, 403, 200, 200, 403),
    ("PATCH", "connections/(?P<name>[^/]+)", "connection_edit"): (200, 403, 403, 403, 403, 403),
    ("PUT", "connections/(?P<name>[^/]+)", "connection_edit"): (200, 403, 403, 403, 403, 403),
    ("DELETE", "connections/(?P<name>[^/]+)", ""): (204, 403, 403, 403, 403, 403),
    ("POST", "request", "request"): (200, 200, 403, 200, 200, 403),
    ("POST", "scan", "scan"): (200, 403, 403, 403, 403, 403),
    ("GET", "info", ""): (200, 200, 403, 200, 200, 403),
    ("GET", "env", ""): (200, 200, 403, 200, 200, 403),
    ("GET", "tokens", ""): (200, 403, 403, 403, 403, 403),
    ("POST", "tokens", "run_token"): (201, 403, 403, 403, 403, 403),
    ("DELETE", "tokens/(?P<token_id>[^/]+)", ""): (404, 403, 403, 403, 403, 403),
    # Only a user's server in client mode (a server token) mints kernel tokens or asks for
    # redactions: inside a Jupyter server nobody has one (tests/test_service.py covers them).
    ("POST", "kernel-tokens", "kernel"): (403, 403, 403, 403, 403, 403),
    ("POST", "kernel-tokens/heartbeat", "heartbeat"): (403, 403, 403, 403, 403, 403),
    ("DELETE", "kernel-tokens/(?P<kernel_id>[^/]+)", ""): (403, 403, 403, 403, 403, 403),
    ("POST", "redact", "redact"): (403, 403, 403, 403, 403, 403),
    ("GET", "health", ""): (200, 200, 403, 200, 200, 403),
    ("GET", "redactions", ""): (200, 200, 403, 403, 403, 403),
    **{(m, "proxy/(?P<connection>[^/]+)/?(?P<path>.*)", ""): (200, 200, 403, 200, 200, 403)
       for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")},
}

PATHS = {
    "secrets": "secrets",
    "secrets/(?P<name>[^/]+)": "secrets/EXISTING",
    "connections/(?P<name>[^/]+)": "connections/zulu",
    "proxy/(?P<connection>[^/]+)/?(?P<path>.*)": "proxy/zulu/echo/x",
    "kernel-tokens/(?P<kernel_id>[^/]+)": "kernel-tokens/k1",
    "tokens/(?P<token_id>[^/]+)": "tokens/0000000000000000",
}


def _bodies(upstream: Any) -> dict[str, Any]:
    host = f"127.0.0.1:{upstream.port}"
    return {
        "": None,
        "force": None,  # DELETE ...?force=true: the connection that uses it stays
        "create": {"name": "NEW", "value": "new-value-123"},
        "batch": {"secrets": [{"key": "NEW", "value": "new-value-123"}]},
        "value": {"value": "replaced-123"},
        "description": {"description": "d"},
        "hosts": {"allowed_hosts": [host, "evil.example"]},
        "placements": {"placements": ["header", "body"]},
        "connection": {"name": "newconn", "base_url": upstream.url, "secret": "EXISTING"},
        "connection_edit": {"description": "d"},
        "request": {"url": f"{upstream.url}/echo/r",
                    "headers": {"Authorization": "Bearer {{secrets.EXISTING}}"}},
        "scan": {"path": ""},
        "kernel": {"kernel_id": "k1"},
        "heartbeat": {"kernel_ids": ["k1"]},
        "redact": {"text": "t"},
        "run_token": {"name": "nightly", "ttl": "1h"},
    }


def _declared_methods(handler: type[web.RequestHandler]) -> list[str]:
    return [m.upper() for m in METHODS
            if getattr(handler, m) is not getattr(web.RequestHandler, m)]


def test_every_route_and_method_has_a_row():
    covered = {(method, route) for method, route, _ in MATRIX}
    declared = {(m, route) for route, handler in ROUTES for m in _declared_methods(handler)}
    assert declared == covered


@pytest.fixture(scope="module")
def callers(live_server, live_upstream) -> dict[str, dict[str, str]]:
    """Headers per caller; the kernel tokens come from the kernels' own environments."""
    admin_kernel = live_server.start_kernel(live_server.admin)
    user_kernel = live_server.start_kernel(live_server.user)
    dead_kernel = live_server.start_kernel(live_server.admin)
    tokens = {name: live_server.kernel_env(kid, "JUPYTER_SECRETS_TOKEN")
              for name, kid in (("admin_kernel", admin_kernel), ("user_kernel", user_kernel),
                                ("revoked", dead_kernel))}
    live_server.stop_kernel(dead_kernel)
    assert all(t.startswith("jsk_") for t in tokens.values())
    return {
        "admin": live_server.admin,
        "user": live_server.user,
        "anonymous": {},
        **{name: {"Authorization": f"Bearer {token}"} for name, token in tokens.items()},
    }


def _reset(server: Any, upstream: Any) -> None:
    """The known state every case starts from."""
    host = f"127.0.0.1:{upstream.port}"
    with httpx.Client(base_url=server.api, headers=server.admin, timeout=30) as admin:
        admin.put("secrets", json={"secrets": [{"key": "NEW", "value": None}]})
        admin.delete("connections/newconn")
        admin.delete("connections/zulu")
        admin.delete("secrets/EXISTING", params={"force": "true"})
        created = admin.post("secrets", json={
            "name": "EXISTING", "value": upstream.api_key, "allowed_hosts": [host]})
        assert created.status_code == 201, created.text
        made = admin.post("connections", json={
            "name": "zulu", "base_url": upstream.url, "secret": "EXISTING"})
        assert made.status_code == 201, made.text


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("method", "route", "body"), list(MATRIX),
                         ids=[f"{m} {PATHS.get(r, r)} {b}".strip() for m, r, b in MATRIX])
def test_access(live_server, live_upstream, callers, method, route, body, caller):
    _reset(live_server, live_upstream)
    expected = MATRIX[(method, route, body)][CALLERS.index(caller)]
    payload = _bodies(live_upstream)[body]
    response = httpx.request(method, f"{live_server.api}/{PATHS.get(route, route)}",
                             headers=callers[caller], json=payload, timeout=30,
                             params={"force": "true"} if body == "force" else None)
    assert response.status_code == expected, response.text
    if expected == 403 and method != "HEAD":
        assert "EXISTING" not in response.text and "zulu" not in response.text
