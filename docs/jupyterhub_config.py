# jupyterhub_config.py: jupyter-secrets as a Hub-managed service (docs/team-deployment.md).
#
# Add this to your Hub's configuration. The secrets service runs as its own OS user and is
# the only process holding the master key, the store's credentials and the values; users'
# servers run in client mode and their kernels call secrets by name through the service.
# tests/test_hub.py starts a real JupyterHub with this very file (only the names below
# changed), so it is known to work with the JupyterHub version the tests install.

c = get_config()  # noqa: F821 - JupyterHub provides it

# -- Your site: change these -----------------------------------------------------------------
# The URL users' browsers open (scheme, host and port; plus c.JupyterHub.base_url if you set
# one). Kernels reach the service there too, so users' servers must be able to reach it.
HUB_PUBLIC_URL = "https://hub.example.org"
# An environment with jupyter-secrets installed (pip install "jupyter-secrets[postgres]").
SECRETS_PYTHON = "/opt/jupyter-secrets/bin/python"
# The service's own OS user (useradd --system --home-dir /var/lib/jupyter-secrets jsecrets),
# its home (the working directory) and its environment file (owner jsecrets, mode 600).
SECRETS_USER = "jsecrets"
SECRETS_HOME = "/var/lib/jupyter-secrets"
SECRETS_ENV_FILE = "/etc/jupyter-secrets/env"
# The service listens on loopback; browsers and kernels reach it through the Hub's proxy
# at HUB_PUBLIC_URL/services/secrets/.
SECRETS_PORT = 8877
# Who manages secrets and connections (from their own JupyterLab or with a Hub API token).
SECRETS_ADMINS = ["alice"]
SECRETS_ADMIN_GROUPS: list[str] = []
# Hub groups: secrets and connections can be shared with them. Usually your authenticator
# manages groups (Authenticator.manage_groups); load_groups is the static way.
GROUPS = {"analysts": {"users": ["bob"]}, "finance": {"users": ["alice"]}}

# -- The secrets service ---------------------------------------------------------------------
c.JupyterHub.services = [
    {
        "name": "secrets",
        "url": f"http://127.0.0.1:{SECRETS_PORT}",
        # The key and the store URL come from the environment file, read by the service's
        # own user: they are not in this file, nor in the Hub's environment.
        "command": [
            "/bin/sh", "-c",
            f"set -a && . {SECRETS_ENV_FILE} && set +a && "
            f"exec {SECRETS_PYTHON} -m jupyter_secrets.cli serve",
        ],
        "user": SECRETS_USER,
        "cwd": SECRETS_HOME,
        # What a browser's login at the service may carry: using secrets, and managing them
        # for those who hold the admin scope (each user gets at most the scopes they hold).
        "oauth_client_allowed_scopes": ["custom:secrets:use", "custom:secrets:admin"],
        # Part of the Hub: no "authorize this service?" page on the first use of the panel.
        "oauth_no_confirm": True,
        # An API, not a page: keep it out of the Hub's Services menu.
        "display": False,
    },
]

c.JupyterHub.custom_scopes = {
    "custom:secrets:use": {
        "description": "List the names of secrets and connections shared with you and call "
        "through them; never a value.",
    },
    "custom:secrets:admin": {
        "description": "Create, replace and delete secrets and connections, choose where "
        "their values may go and who may use them, read the audit log.",
        "subscopes": ["custom:secrets:use"],
    },
}

c.JupyterHub.load_roles = [
    # Every user: may reach the service and use what is shared with them.
    {
        "name": "user",
        "scopes": ["self", "access:services!service=secrets", "custom:secrets:use"],
    },
    # Each user's server (its JUPYTERHUB_API_TOKEN, its credential at the service in client
    # mode): JupyterHub's defaults plus use. Nothing that manages: code in a kernel can read
    # its server's token, so it must not be able to change a secret or where a value goes.
    {
        "name": "server",
        "scopes": [
            "users:activity!user",
            "access:servers!server",
            "access:services!service=secrets",
            "custom:secrets:use",
        ],
    },
    # The service itself: reads users' groups at the Hub (sharing with groups).
    {"name": "secrets-service", "scopes": ["read:users:groups"], "services": ["secrets"]},
    # Secrets admins: manage from their own browser session or a Hub API token.
    {
        "name": "secrets-admin",
        "scopes": ["access:services!service=secrets", "custom:secrets:admin"],
        "users": SECRETS_ADMINS,
        "groups": SECRETS_ADMIN_GROUPS,
    },
]

c.JupyterHub.load_groups = GROUPS

# -- Users' servers: client mode ---------------------------------------------------------------
# jupyter-secrets must be installed in the users' environment too (it is the server extension,
# the panel and the kernel client). With the service URL set, a server holds no store, no key
# and no value; its Hub token is its credential at the service.
c.Spawner.environment = {
    "JUPYTER_SECRETS_SERVICE_URL": f"{HUB_PUBLIC_URL}/services/secrets/",
}
