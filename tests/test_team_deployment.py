"""docs/team-deployment.md, tested: what admins copy is what the tests run.

The page's code blocks are marked (``<!-- test: NAME -->`` or ``<!-- file: PATH -->``) and read
here: the ``jupyterhub_config.py`` shown is the file tests/test_hub.py starts a real Hub with;
the Zero to JupyterHub values say the same thing in the chart's words; the Kubernetes manifests
fit together; the rotation and backup commands run as written (paths and names substituted)
against a real service, a real PostgreSQL and SQLite.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from traitlets.config import Config

from jupyter_secrets.crypto import Keyring, open_sealed, reveal
from jupyter_secrets.keys import generate_key_text
from jupyter_secrets.protocol import ADMIN_TOKEN_ENV, KEY_ENV, STORE_URL_ENV
from jupyter_secrets.services.secrets import SecretsService
from jupyter_secrets.store import open_store

from .hub import DOCS_CONFIG
from .hub import docs_block as block
from .live import free_port, wait_for
from .osusers import os_user, shared_python


def hub_config(source: str) -> Any:
    """A jupyterhub_config.py's ``c``, as JupyterHub loads it."""
    config = Config()
    exec(compile(source, "jupyterhub_config.py", "exec"), {"get_config": lambda: config})  # noqa: S102
    return config


def test_the_page_shows_the_config_the_hub_tests_run() -> None:
    assert block("file: docs/jupyterhub_config.py") == DOCS_CONFIG.read_text()


def test_the_config_speaks_the_installed_jupyterhub() -> None:
    """Every service key is one JupyterHub accepts, every scope exists (JupyterHub's own or
    one of the custom scopes), custom scope names have the required form."""
    from jupyterhub import scopes
    from jupyterhub.services.service import Service

    c = hub_config(DOCS_CONFIG.read_text())
    [service] = c.JupyterHub.services
    assert set(service) <= set(Service.class_traits(input=True))
    custom = c.JupyterHub.custom_scopes
    assert all(scopes._custom_scope_pattern.fullmatch(name) for name in custom)
    for role in c.JupyterHub.load_roles:
        assert set(role) <= {"name", "description", "scopes", "users", "services", "groups"}
        for scope in role["scopes"]:
            base = scope.split("!", 1)[0]
            assert base in custom or base in scopes.scope_definitions, scope
    for scope in service["oauth_client_allowed_scopes"]:
        assert scope in custom
    assert c.Spawner.environment["JUPYTER_SECRETS_SERVICE_URL"] == (
        "https://hub.example.org/services/secrets/")


def test_zero_to_jupyterhub_values_say_the_same() -> None:
    """The chart turns ``hub.services`` and ``hub.loadRoles`` (dicts) into JupyterHub's lists
    (names from the keys), passes ``hub.config`` through and runs ``hub.extraConfig``; done
    here the same way, the result equals the Hub-managed config, minus what only a managed
    service has (its command, OS user and directory) and its in-cluster URL."""
    values = yaml.safe_load(block("test: values.yaml"))
    c = hub_config(DOCS_CONFIG.read_text())
    hub = values["hub"]
    services = [{"name": key, **service} for key, service in hub["services"].items()]
    managed = {"command", "user", "cwd", "url"}
    assert [{k: v for k, v in s.items() if k != "url"} for s in services] == [
        {k: v for k, v in s.items() if k not in managed} for s in c.JupyterHub.services]
    roles = [{"name": key, **role} for key, role in hub["loadRoles"].items()]
    assert roles == c.JupyterHub.load_roles
    chart = hub_config("c = get_config()\n" + hub["extraConfig"]["jupyter-secrets"])
    assert chart.JupyterHub.custom_scopes == c.JupyterHub.custom_scopes
    assert hub["config"]["JupyterHub"]["load_groups"] == c.JupyterHub.load_groups
    assert values["singleuser"]["extraEnv"] == c.Spawner.environment


def test_kubernetes_manifests_fit_together() -> None:
    values = yaml.safe_load(block("test: values.yaml"))
    secret, deployment, service, policy = yaml.safe_load_all(block("test: k8s"))
    assert [d["kind"] for d in (secret, deployment, service, policy)] == [
        "Secret", "Deployment", "Service", "NetworkPolicy"]
    assert set(secret["stringData"]) == {KEY_ENV, STORE_URL_ENV, ADMIN_TOKEN_ENV}
    pod = deployment["spec"]["template"]
    [container] = pod["spec"]["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    env = {e["name"]: e for e in container["env"]}
    [(name, spec)] = values["hub"]["services"].items()
    assert env["JUPYTERHUB_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "hub", "key": f"hub.services.{name}.apiToken"}
    assert env["JUPYTERHUB_SERVICE_NAME"]["value"] == name
    assert env["JUPYTERHUB_CLIENT_ID"]["value"] == f"service-{name}"
    prefix = f"/services/{name}/"
    assert env["JUPYTERHUB_SERVICE_PREFIX"]["value"] == prefix
    assert env["JUPYTERHUB_OAUTH_CALLBACK_URL"]["value"] == f"{prefix}oauth_callback"
    assert container["command"][:3] == ["jupyter", "secrets", "serve"]
    assert container["command"][container["command"].index("--base-url") + 1] == prefix
    port = container["command"][container["command"].index("--port") + 1]
    assert spec["url"] == f"http://{service['metadata']['name']}:{port}"
    assert pod["metadata"]["labels"]["hub.jupyter.org/network-access-hub"] == "true"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"] == (
        policy["spec"]["podSelector"]["matchLabels"])
    assert values["singleuser"]["extraEnv"]["JUPYTER_SECRETS_SERVICE_URL"].endswith(prefix)


def test_the_environment_file_names_the_settings_the_service_reads() -> None:
    names = re.findall(r"^([A-Z_]+)=", block("test: env-file"), re.M)
    assert names == [KEY_ENV, STORE_URL_ENV, ADMIN_TOKEN_ENV]


# -- procedures, run as written --------------------------------------------------------------


def _seal(store_url: str, key: str, name: str, value: str) -> None:
    service = SecretsService(open_store(store_url), Keyring.from_text(key))
    try:
        service.create("ops", name, value)
    finally:
        service.store.close()


def _open(store_url: str, key: str, name: str) -> str:
    store = open_store(store_url)
    try:
        found = store.get_sealed(name)
        assert found is not None, f"{name} is not in {store_url.split('@')[-1]}"
        record, sealed = found
        return reveal(open_sealed(Keyring.from_text(key), record.identity, sealed))
    finally:
        store.close()


def test_postgresql_backup_and_restore_as_documented(
    postgres_cluster: Any, postgres_url: str, tmp_path: Path
) -> None:
    key, value = generate_key_text(), f"canary-{secrets.token_hex(16)}"
    _seal(postgres_url, key, "BACKED_UP", value)
    source, target = postgres_cluster.dbname(postgres_url), f"r_{secrets.token_hex(6)}"
    restored = postgres_cluster.create_database(target)
    script = (block("test: backup-postgres")
              .replace("postgresql://jsecrets@127.0.0.1:5432/secrets_restored",
                       postgres_cluster.url(target, password=False))
              .replace("postgresql://jsecrets@127.0.0.1:5432/secrets",
                       postgres_cluster.url(source, password=False)))
    env = {"PATH": os.environ["PATH"], "PGPASSWORD": postgres_cluster.password}
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    [dump] = tmp_path.glob("secrets-*.dump")
    assert value.encode() not in dump.read_bytes(), "ciphertext only"
    assert _open(restored, key, "BACKED_UP") == value


def test_sqlite_backup_as_documented(tmp_path: Path) -> None:
    key, value = generate_key_text(), f"canary-{secrets.token_hex(16)}"
    live = tmp_path / "var" / "secrets.db"
    _seal(f"sqlite:///{live}", key, "BACKED_UP", value)
    script = block("test: backup-sqlite").replace("/var/lib/jupyter-secrets/secrets.db",
                                                  str(live))
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    [copy] = tmp_path.glob("secrets-*.db")
    assert value.encode() not in copy.read_bytes(), "ciphertext only"
    assert _open(f"sqlite:///{copy}", key, "BACKED_UP") == value


RESTART = "restart_service() { pkill -u jsecrets -f 'jupyter_secrets.cli serve'; sleep 40; }"


@pytest.mark.slow
def test_key_rotation_as_documented(postgres_url: str, tmp_path: Path) -> None:
    """The rotation script of the page, as root, against the service running as its own OS
    user from its environment file. Only the restart differs: the test restarts the service
    itself instead of waiting for the Hub to (tests/test_hub.py shows the Hub does)."""
    old, value = generate_key_text(), f"canary-{secrets.token_hex(16)}"
    admin_token, port = secrets.token_hex(32), free_port()
    python = shared_python(Path(f"/tmp/js-rotate-{secrets.token_hex(4)}"))
    bindir = python.parent
    (bindir / "jupyter").write_text(  # `jupyter secrets ...` of this checkout, for everyone
        f'#!/bin/sh\n[ "$1" = secrets ] && shift\nexec {python} -m jupyter_secrets.cli "$@"\n')
    (bindir / "jupyter").chmod(0o755)
    try:
        with os_user("jssvc") as svc:
            env_file = svc.home / "env"
            env_file.write_text(
                f"{KEY_ENV}='{old}'\n{STORE_URL_ENV}='{postgres_url}'\n"
                f"{ADMIN_TOKEN_ENV}='{admin_token}'\n")
            os.chown(env_file, svc.uid, svc.gid)
            env_file.chmod(0o600)
            _seal(postgres_url, old, "ROTATED", value)
            pidfile, log = tmp_path / "service.pid", tmp_path / "service.log"
            restart = textwrap.dedent(f"""\
                restart_service() {{
                  if [ -f {pidfile} ]; then
                    pid=$(cat {pidfile}); kill "$pid"
                    while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
                  fi
                  setpriv --reuid={svc.uid} --regid={svc.gid} --clear-groups \\
                    sh -c "set -a && . $ENV_FILE && exec {python} -m jupyter_secrets.cli \\
                    serve --port {port}" >>{log} 2>&1 &
                  echo $! >{pidfile}
                  until curl -sf -o /dev/null -H "Authorization: token {admin_token}" \\
                    http://127.0.0.1:{port}/api/secrets/v1/info; do sleep 0.3; done
                }}""")
            script = block("test: rotate")
            assert RESTART in script
            script = (script.replace(RESTART, restart + "\nrestart_service  # runs, old key")
                      .replace("/etc/jupyter-secrets/env", str(env_file))
                      .replace("/opt/jupyter-secrets/bin", str(bindir))
                      .replace("runuser -u jsecrets", f"runuser -u {svc.name}"))
            assert "jsecrets" not in script
            try:
                run = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True,
                    env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, timeout=300, cwd=tmp_path)
                assert run.returncode == 0, run.stderr + log.read_text()
                assert "Re-wrapped 1 data key(s)" in run.stdout, run.stdout
                wait_for(f"http://127.0.0.1:{port}/api/secrets/v1/info",
                         _Pid(pidfile), log.read_text)
                listed = httpx.get(f"http://127.0.0.1:{port}/api/secrets/v1/secrets/ROTATED",
                                   headers={"Authorization": f"token {admin_token}"}).json()
            finally:
                if pidfile.exists():
                    subprocess.run(["kill", pidfile.read_text().strip()], check=False)
            stat = env_file.stat()
            assert (stat.st_uid, stat.st_mode & 0o777) == (svc.uid, 0o600), "still private"
            [new] = re.findall(rf"^{KEY_ENV}='([^',]+)'$", env_file.read_text(), re.M)
    finally:
        shutil.rmtree(python.parent.parent.parent, ignore_errors=True)
    assert new != old
    assert listed["key_id"] == Keyring.from_text(new).primary.key_id
    assert _open(postgres_url, new, "ROTATED") == value, "the new key alone opens it"
    assert value not in log.read_text() and old not in log.read_text()


class _Pid:
    """Enough of a Popen for ``wait_for``: alive while its pid is."""

    def __init__(self, pidfile: Path) -> None:
        self.pid = int(pidfile.read_text().strip())

    def poll(self) -> int | None:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return 1
        return None
