"""A kernel's egress calls, served without jupyter_server's handler machinery.

Why: every proxied call pays for the Jupyter handler it runs in (the routing through every
extension's routes, ``JupyterHandler``'s headers, identity provider, CORS, XSRF and origin
steps), and a call that starts after a pause, as every SSE stream does, pays it with cold
caches: about 0.5 ms of a 2.4 ms first byte (``benchmarks/README.md``). A kernel's call
needs none of it, so this router sends exactly those calls to the same egress handlers
bound to a plain tornado ``RequestHandler``, matched before any other route. Everything
else, including any egress call this matcher is not sure about, goes the usual way.

What the usual way checks, and why a matched request does not need it:

- *Identity*: the kernel token is resolved by the same :class:`KernelAwareIdentity`
  (a live kernel's token, or a run token); nothing else signs in here.
- *XSRF, CORS and origin*: they guard requests a browser makes with ambient credentials
  (cookies). A matched request carries no ``Cookie`` and no ``Origin`` header and is not a
  preflight; its only credential is a token the browser cannot attach by itself.
- *Host* (DNS rebinding): the same rule as jupyter_server's, in the matcher: a request
  for a host the server would refuse is not matched, so the server refuses it.
- *Authorizer*: only installed while the server's authorizer is jupyter_server's
  ``AllowAllAuthorizer``, which allows everything; with a deployment's own authorizer
  every call goes through the server's handlers, where it can veto.
- *Activity and access log*: kept (``api_last_activity``, the server's ``log_request``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from logging import Logger
from typing import Any, ClassVar

from jupyter_server.auth.authorizer import AllowAllAuthorizer
from jupyter_server.utils import url_path_join
from tornado import httputil, web
from tornado.routing import PathMatches, Rule

from ..api import bind_routes, egress
from ..services.tokens import token_from_headers
from .identity import KERNEL_IDENTITY_KEY

_PORT = re.compile(r":\d+$")


def host_is_local(host: str, settings: dict[str, Any]) -> bool:
    """jupyter_server's ``check_host``: with remote access off, only loopback hosts pass."""
    if settings.get("allow_remote_access", False):
        return True
    name = _PORT.sub("", host)
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return name in settings.get("local_hostnames", ["localhost"])


class KernelCallMatcher(PathMatches):
    """Our egress path, called by a script with one of our tokens and nothing a browser adds."""

    def __init__(self, pattern: str, settings: dict[str, Any]) -> None:
        super().__init__(pattern)
        self._settings = settings

    def match(self, request: httputil.HTTPServerRequest) -> dict[str, Any] | None:
        matched = super().match(request)  # the path first: most requests are not ours
        if matched is None or request.method == "OPTIONS":
            return None
        headers = request.headers
        if "Origin" in headers or "Cookie" in headers or token_from_headers(headers) is None:
            return None
        if not host_is_local(request.host, self._settings):
            return None
        return matched


class KernelCallHandler(web.RequestHandler):
    """The tornado base the egress handlers are bound to on the kernel's fast path."""

    kernel_grant = None  # set by the identity when a kernel token signs the request in
    #: Set per server by ``install_kernel_calls``: its logger (access lines land with its
    #: own) and the headers its API handlers send on every answer.
    server_log: ClassVar[Logger | None] = None
    default_headers: ClassVar[Mapping[str, str]] = {}

    @property
    def log(self) -> Logger:
        """What jupyter_server's ``log_request`` writes the access line to."""
        assert self.server_log is not None, "set by install_kernel_calls"
        return self.server_log

    def set_default_headers(self) -> None:
        for name, value in self.default_headers.items():
            self.set_header(name, value)

    def check_xsrf_cookie(self) -> None:
        """No cookie reaches this handler (the matcher), so there is no request to forge."""

    async def prepare(self) -> None:
        self.current_user = self.settings[KERNEL_IDENTITY_KEY].get_user(self)

    def on_finish(self) -> None:
        if self.current_user is not None:  # what jupyter_server's API handlers record
            self.settings["api_last_activity"] = datetime.now(timezone.utc)


def _default_headers(settings: dict[str, Any]) -> dict[str, str]:
    """The headers jupyter_server's API handlers send on every answer."""
    configured: dict[str, str] = dict(settings.get("headers", {}))
    policy = configured.get("Content-Security-Policy") or "; ".join([
        "frame-ancestors 'self'",
        "report-uri " + settings.get(
            "csp_report_uri", url_path_join(settings.get("base_url", "/"),
                                            "/api/security/csp-report")),
        "default-src 'none'",
    ])
    return {"X-Content-Type-Options": "nosniff", **configured,
            "Content-Security-Policy": policy}


def install_kernel_calls(web_app: web.Application, server_log: Logger) -> bool:
    """Route kernels' egress calls around the handler machinery; False: not installed.

    Not installed under a deployment's own authorizer (it must see every call).
    """
    settings = web_app.settings
    if type(settings.get("authorizer")) is not AllowAllAuthorizer:
        return False
    base = type("KernelCallBase", (KernelCallHandler,), {
        "server_log": server_log, "default_headers": _default_headers(settings)})
    router = web_app.default_router
    for pattern, handler in reversed(bind_routes(base, egress.routes)):
        path = url_path_join(settings.get("base_url", "/"), pattern.removeprefix("/"))
        rule = Rule(KernelCallMatcher(path, settings), handler)
        router.rules.insert(0, router.process_rule(rule))
    return True
