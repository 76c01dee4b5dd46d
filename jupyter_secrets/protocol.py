"""The wire protocol, defined once: paths, environment variables, headers, message shapes.

Everything a second party relies on lives here (the kernel client, the labextension, the CLI
talking to a service, scripts outside the repo). ``labextension/src/protocol.ts`` mirrors it,
and a test checks that the two agree.
"""

from __future__ import annotations

from typing import Final

#: REST API root below a server's base URL (a Jupyter server or the secrets service).
API_PATH: Final = "api/secrets/v1"
API_PREFIX: Final = "/" + API_PATH

#: Set in every kernel's environment: where the API is and the kernel's own token.
URL_ENV: Final = "JUPYTER_SECRETS_URL"
TOKEN_ENV: Final = "JUPYTER_SECRETS_TOKEN"  # noqa: S105 - a variable name

#: Server-side settings read from the environment; never passed on to kernels.
KEY_ENV: Final = "JUPYTER_SECRETS_KEY"
KEY_FILE_ENV: Final = "JUPYTER_SECRETS_KEY_FILE"
STORE_URL_ENV: Final = "JUPYTER_SECRETS_STORE_URL"
#: The destination's master key for ``jupyter secrets migrate`` (same form as KEY_ENV).
TARGET_KEY_ENV: Final = "JUPYTER_SECRETS_TARGET_KEY"
SERVER_ONLY_ENV: Final = (KEY_ENV, KEY_FILE_ENV, STORE_URL_ENV, TARGET_KEY_ENV)
#: The secrets service's admin credential (``jupyter secrets serve``; the CLI with
#: ``--service-url``), and a user's Jupyter server's credential for the service.
ADMIN_TOKEN_ENV: Final = "JUPYTER_SECRETS_ADMIN_TOKEN"  # noqa: S105 - a variable name
SERVICE_URL_ENV: Final = "JUPYTER_SECRETS_SERVICE_URL"
SERVICE_TOKEN_ENV: Final = "JUPYTER_SECRETS_SERVICE_TOKEN"  # noqa: S105 - a variable name

#: Tokens say what they are by their prefix: a kernel's (it fits SDKs' ``api_key`` slots),
#: a user's Jupyter server's (client mode), a headless run's.
KERNEL_TOKEN_PREFIX: Final = "jsk_"  # noqa: S105 - a prefix
SERVER_TOKEN_PREFIX: Final = "jss_"  # noqa: S105 - a prefix
RUN_TOKEN_PREFIX: Final = "jsr_"  # noqa: S105 - a prefix

#: Marks responses that are the proxy's own errors (upstream errors pass through unmarked).
ERROR_HEADER: Final = "X-Jupyter-Secrets-Error"
#: Milliseconds the proxy spent before the upstream call left.
OVERHEAD_HEADER: Final = "X-Jupyter-Secrets-Overhead-Ms"

#: The logger every part writes to (a child of the Jupyter server's, so lines land there).
LOGGER_NAME: Final = "ServerApp.jupyter_secrets"

#: The panel widget's comm messages (never a value). Kernel -> front-end: reload what you show.
PANEL_REFRESH: Final = "refresh"
#: Front-end -> kernel, after the browser changed something: what, never a value.
PANEL_CHANGED: Final = "changed"
PANEL_CHANGED_FIELDS: Final = ("event", "kind", "name", "action")

#: The front-end module and classes that render the panel widget.
WIDGET_MODULE: Final = "jupyter-secrets"
WIDGET_MODULE_VERSION: Final = "0.1.0"
PANEL_MODEL: Final = "SecretsPanelModel"
PANEL_VIEW: Final = "SecretsPanelView"
