"""The plain relay of ``_servers.py`` as a Jupyter server extension: the floor for any proxy
that lives in jupyter_server.

Same relay code, but behind jupyter_server's handler stack (authentication and identity,
host, origin and XSRF checks, security headers, the per-request access log and Prometheus
metric), which every extension's handler runs, jupyter-server-proxy's and ours included.
``proxy.py`` starts it with only this extension enabled, on ``/bench-relay/<path>``, the
upstream and key from ``BENCH_UPSTREAM`` and ``BENCH_KEY``.
"""

from __future__ import annotations

import os
from typing import Any

from _servers import relay, relay_client
from jupyter_server.base.handlers import JupyterHandler
from tornado import web


class JupyterRelayHandler(JupyterHandler):
    client: Any = None

    @web.authenticated
    async def post(self, path: str) -> None:
        if JupyterRelayHandler.client is None:
            JupyterRelayHandler.client = relay_client()
        await relay(self, JupyterRelayHandler.client, os.environ["BENCH_UPSTREAM"],
                    os.environ["BENCH_KEY"], path)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "_jupyter_relay"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    web_app = serverapp.web_app
    base = web_app.settings["base_url"].rstrip("/")
    web_app.add_handlers(".*$", [(f"{base}/bench-relay/(.*)", JupyterRelayHandler)])
