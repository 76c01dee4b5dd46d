"""Configurable settings shared by the server extension and the CLI.

``SecretsExtensionApp`` inherits these traits, so ``c.SecretsExtensionApp.store_url``
in ``jupyter_server_config`` configures both. The CLI reads them through this light
class instead of importing the server (which takes seconds to import).
"""

from __future__ import annotations

import os
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir
from traitlets import Bool, Dict, Float, Int, List, Set, Unicode, default
from traitlets.config import Config, Configurable

from .protocol import KEY_FILE_ENV, SERVICE_TOKEN_ENV, SERVICE_URL_ENV, STORE_URL_ENV
from .services.secrets import DEFAULT_MAX_BATCH, Limits
from .validation import DEFAULT_MAX_VALUE_BYTES

CONFIG_SECTION = "SecretsExtensionApp"


def default_store_url() -> str:
    if os.environ.get(STORE_URL_ENV):
        return os.environ[STORE_URL_ENV]
    return "sqlite:///" + str(Path(jupyter_data_dir(), "jupyter_secrets", "secrets.db"))


def default_key_file() -> str:
    """Beside, not inside, the database's folder: copying that folder leaves the key behind."""
    if os.environ.get(KEY_FILE_ENV):
        return os.environ[KEY_FILE_ENV]
    return str(Path(jupyter_data_dir(), "jupyter_secrets.key"))


class SecretsSettings(Configurable):
    store_url = Unicode(
        help="Where secrets are stored, as a URL: sqlite:///path/to/secrets.db. "
        "Defaults to $JUPYTER_SECRETS_STORE_URL, else secrets.db in the Jupyter data dir.",
    ).tag(config=True)

    key_file = Unicode(
        help="Master key file used when $JUPYTER_SECRETS_KEY is unset; created (mode 0600) "
        "when missing and the store is empty. Defaults to $JUPYTER_SECRETS_KEY_FILE, else "
        "jupyter_secrets.key in the Jupyter data dir (outside the database's folder).",
    ).tag(config=True)

    admin_users = Set(
        Unicode(),
        help="User names allowed to create, replace and delete secrets. When empty, the user "
        "of a single-identity (token/password) server, or JUPYTERHUB_USER, is admin.",
    ).tag(config=True)

    groups = Dict(
        value_trait=List(Unicode()), key_trait=Unicode(),
        help="Groups for sharing secrets and connections, like {\"analysts\": [\"bob\"]}. "
        "Under JupyterHub the Hub's own groups count too.",
    ).tag(config=True)

    users_can_list = Bool(
        True, help="Whether non-admin users may list secret names and metadata."
    ).tag(config=True)

    max_value_bytes = Int(
        DEFAULT_MAX_VALUE_BYTES, help="Largest secret value accepted, in bytes (UTF-8)."
    ).tag(config=True)

    max_batch_size = Int(
        DEFAULT_MAX_BATCH, help="Most secrets accepted in one batch upsert/delete."
    ).tag(config=True)

    max_request_bytes = Int(
        2 * 1024 * 1024, help="Largest request body the secrets API accepts, in bytes."
    ).tag(config=True)

    connect_timeout = Float(
        10.0, help="Seconds to wait for an upstream connection before a 504."
    ).tag(config=True)

    idle_timeout = Float(
        300.0, help="Seconds an upstream may stay silent between chunks (slow reasoning "
        "models need minutes). There is no total timeout on streams.",
    ).tag(config=True)

    max_redirects = Int(
        5, help="Redirects followed, and only to hosts every injected secret may go to."
    ).tag(config=True)

    max_proxy_body_bytes = Int(
        32 * 1024 * 1024, help="Largest request body the proxy relays, in bytes."
    ).tag(config=True)

    redact_on_save = Bool(
        True, help="Replace stored secret values with [REDACTED:NAME] in notebooks and text "
        "files saved through Jupyter (sources, outputs, widget state).",
    ).tag(config=True)

    redact_min_length = Int(
        8, min=1, help="Shortest stored value (in characters) that redaction of saved files, "
        "scans and log lines looks for; shorter and whitespace-only values are skipped so "
        "they cannot mangle indentation and words. The proxy always scrubs every value it "
        "injected, whatever its length.",
    ).tag(config=True)

    audit_retention_days = Int(
        90, min=0, help="Days audit events are kept (pruned at start-up and daily); "
        "0 keeps them forever.",
    ).tag(config=True)

    service_url = Unicode(
        help="Client mode: the secrets service's base URL (like https://secrets.example.org/); "
        "this server then holds no store, no key and no value, and its kernels call the "
        "service. Defaults to $JUPYTER_SECRETS_SERVICE_URL.",
    ).tag(config=True)

    service_token = Unicode(
        help="Client mode: this server's credential for the service (jupyter secrets "
        "server-token create --user NAME); it can mint kernel tokens and use secrets, never "
        "manage them. Defaults to $JUPYTER_SECRETS_SERVICE_TOKEN, else (under JupyterHub) "
        "$JUPYTERHUB_API_TOKEN, whose role must grant custom:secrets:use and no more.",
    ).tag(config=True)

    service_allow_origins = List(
        Unicode(), help="The secrets service: browser origins (like https://hub.example.org) "
        "allowed to call it directly (CORS), for the panel of users' JupyterLab.",
    ).tag(config=True)

    destinations_from_browsers = Bool(
        True, help="Whether a browser (the sidebar, the panel, any page) may change where a "
        "value may go: widen a secret's allowed hosts or placements, create a connection or "
        "change its URL, auth, headers or secret. A JupyterLab page also runs JavaScript from "
        "kernel outputs (application/javascript, HTML, widgets), so code in a kernel whose "
        "output an admin views can act with that admin's browser login. False: such changes "
        "are accepted only without a browser's Origin header (the jupyter secrets CLI, "
        "scripts), and browsers may still add, replace and delete values and narrow hosts.",
    ).tag(config=True)

    kernel_fast_path = Bool(
        True, help="Inside a Jupyter server: serve a kernel's proxied and ad-hoc calls (a "
        "kernel token, no cookie, no Origin) on a route matched before the server's own, "
        "without jupyter_server's handler steps that only browsers need (about 0.3-0.5 ms "
        "per call). Off by itself under a deployment's own Authorizer. False: every call "
        "goes through the server's handlers.",
    ).tag(config=True)

    kernel_token_grace = Float(
        90.0, min=1.0, help="Seconds a kernel token outlives the last heartbeat of the server "
        "that asked for it (servers send one every 30 s while the kernel runs).",
    ).tag(config=True)

    redactions_per_minute = Int(
        120, min=1, help="Most redaction requests one user's server may make per minute "
        "(client mode): a redaction confirms a guess of a value.",
    ).tag(config=True)

    @default("store_url")
    def _default_store_url(self) -> str:
        return default_store_url()

    @default("service_url")
    def _default_service_url(self) -> str:
        return os.environ.get(SERVICE_URL_ENV, "")

    @default("service_token")
    def _default_service_token(self) -> str:
        """Under JupyterHub the singleuser server's own Hub token (with the use scope) works."""
        return os.environ.get(SERVICE_TOKEN_ENV) or os.environ.get("JUPYTERHUB_API_TOKEN", "")

    @default("key_file")
    def _default_key_file(self) -> str:
        return default_key_file()

    def limits(self) -> Limits:
        return Limits(max_value_bytes=self.max_value_bytes, max_batch=self.max_batch_size)

    @classmethod
    def from_server_config(cls, config: Config) -> SecretsSettings:
        """Settings from a loaded server config's ``SecretsExtensionApp`` section."""
        section = Config()
        section[cls.__name__] = config.get(CONFIG_SECTION, Config())
        return cls(config=section)
