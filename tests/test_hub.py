"""The secrets service as a JupyterHub service, end to end (issue 11).

A real JupyterHub (tests/hub.py) configured by docs/jupyterhub_config.py: the service runs as
its own OS user on PostgreSQL, alice (admin, group finance) and bob (group analysts) log in
with the Hub's form and get servers as their own OS users, in client mode. Identity comes from
the Hub: browser logins and Hub API tokens carry the custom scopes, users' servers use their
Hub token (the ``server`` role: use, nothing that manages), groups are the Hub's.

The tests share one Hub and run in file order: the service state seeded first (with the
service's own admin token, so that each later test fails only for what it checks).
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jupyter_secrets.crypto import Keyring, open_sealed, reveal
from jupyter_secrets.store import open_store

from .attacker import ATTACK, digest
from .helpers import assert_no_canary
from .hub import Hub, HubUser, docs_block
from .upstream import CONTENT, start_upstream

pytestmark = pytest.mark.slow
CANARY = f"canary-{secrets.token_hex(16)}"
FINANCE_VALUE = f"canary-{secrets.token_hex(16)}"
ANALYSTS_VALUE = f"canary-{secrets.token_hex(16)}"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def _admin(hub: Hub, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A call with the service's own admin token (setting up and checking state)."""
    return httpx.request(method, f"{hub.service_api}/{path}", headers=hub.service_admin,
                         timeout=30, trust_env=False, **kwargs)


def _stored(hub: Hub, name: str) -> tuple[int, str]:
    """(version, value) in the service's store, opened with the service's key (as root)."""
    store = open_store(hub.store_url)
    try:
        found = store.get_sealed(name)
        assert found is not None, f"{name} is not in the service's store"
        record, sealed = found
        return record.version, reveal(open_sealed(Keyring.from_text(hub.master_key),
                                                  record.identity, sealed))
    finally:
        store.close()


@pytest.fixture(scope="module")
def seeded(jupyterhub: Hub, live_upstream: Any) -> Any:
    """Connections ``up`` and ``llm`` (everyone), ``fin`` (group finance); secrets CANARY
    (everyone), FINANCE_KEY (group finance), ANALYSTS_KEY (group analysts): the loopback
    upstream is each one's only allowed host."""
    host = f"127.0.0.1:{live_upstream.port}"
    key = live_upstream.api_key
    for path, body in (
        ("connections", {"name": "up", "base_url": live_upstream.url, "value": key}),
        ("connections", {"name": "llm", "preset": "openai", "value": key,
                         "base_url": f"{live_upstream.url}/v1"}),
        ("connections", {"name": "fin", "base_url": live_upstream.url, "value": key,
                         "shared_with": {"groups": ["finance"]}}),
        ("secrets", {"name": "CANARY", "value": CANARY, "allowed_hosts": [host]}),
        ("secrets", {"name": "FINANCE_KEY", "value": FINANCE_VALUE, "allowed_hosts": [host],
                     "shared_with": {"groups": ["finance"]}}),
        ("secrets", {"name": "ANALYSTS_KEY", "value": ANALYSTS_VALUE,
                     "allowed_hosts": [host], "shared_with": {"groups": ["analysts"]}}),
    ):
        response = _admin(jupyterhub, "POST", path, json=body)
        assert response.status_code == 201, (path, response.text)
    return live_upstream


@pytest.fixture(scope="module")
def bob_kernel(jupyterhub: Hub, seeded: Any) -> Iterator[str]:
    kernel_id = jupyterhub.start_kernel(jupyterhub.bob)
    yield kernel_id
    jupyterhub.stop_kernel(jupyterhub.bob, kernel_id)


@pytest.fixture(scope="module")
def alice_kernel(jupyterhub: Hub, seeded: Any) -> Iterator[str]:
    kernel_id = jupyterhub.start_kernel(jupyterhub.alice)
    yield kernel_id
    jupyterhub.stop_kernel(jupyterhub.alice, kernel_id)


def _hub_user(hub: Hub, user: HubUser, **token: Any) -> dict[str, Any]:
    response = httpx.get(f"{hub.hub_api}/user", headers=hub.auth(user, **token), timeout=30,
                         trust_env=False)
    assert response.status_code == 200, response.text
    return dict(response.json())


# -- the Hub's side: what docs/jupyterhub_config.py sets up ------------------------------------


def test_the_hub_runs_the_service_as_its_own_user(jupyterhub: Hub) -> None:
    hub = jupyterhub
    assert httpx.get(f"{hub.hub_api}/", timeout=30).json()["version"]
    [(pid, uid)] = hub.service_processes()
    assert uid == hub.service_user.uid, "the Hub started the service as its own OS user"
    env_file = hub.env_file.stat()
    assert (env_file.st_uid, env_file.st_mode & 0o777) == (hub.service_user.uid, 0o600)
    config = (hub.root / "jupyterhub_config.py").read_text()
    for value in (hub.master_key, hub.admin_token, hub.store_url):
        assert value not in config, "the key and the store URL are not in the Hub's config"
        assert value not in Path(f"/proc/{hub.process.pid}/environ").read_bytes().decode(
            errors="replace"), "nor in the Hub's environment"  # type: ignore[union-attr]

    services = httpx.get(f"{hub.hub_api}/services", headers=hub.auth(hub.alice),
                         timeout=30).json()
    model = services["secrets"]
    assert (model["pid"], model["prefix"], model["admin"]) == (pid, "/services/secrets/", False)


def test_roles_give_users_use_and_admins_admin(jupyterhub: Hub) -> None:
    """The scopes each kind of Hub credential carries, from the documented roles."""
    hub = jupyterhub
    alice, bob = _hub_user(hub, hub.alice), _hub_user(hub, hub.bob)
    use, admin = "custom:secrets:use", "custom:secrets:admin"
    access = "access:services!service=secrets"
    assert {use, admin} <= set(alice["scopes"])
    assert {access, "access:services"} & set(alice["scopes"]), "a Hub admin: every service"
    assert {use, access} <= set(bob["scopes"]) and admin not in bob["scopes"]
    assert bob["groups"] == ["analysts"] and alice["groups"] == ["finance"]
    # Each user's server: its Hub token may use secrets, never manage them (alice's neither).
    for user in (hub.alice, hub.bob):
        hub.start_server(user)
        token = hub.server_env(user)["JUPYTERHUB_API_TOKEN"]
        model = httpx.get(f"{hub.hub_api}/user", headers={"Authorization": f"token {token}"},
                          timeout=30).json()
        assert model["name"] == user.name
        assert {use, access} <= set(model["scopes"]) and admin not in model["scopes"]
        assert not [s for s in model["scopes"] if s.startswith(("admin", "tokens", "users!"))]


# -- the service's side: identity from the Hub (the lead's part of issue 11) ---------------


def test_hub_api_tokens_identify_scripts(jupyterhub: Hub, seeded: Any) -> None:
    """A person's Hub API token works at the service: who they are and what their scopes
    allow. A token without access to the service gets nothing."""
    hub = jupyterhub
    alice, bob = hub.auth(hub.alice), hub.auth(hub.bob)
    me = httpx.get(f"{hub.service_api}/me", headers=alice, timeout=30)
    assert me.status_code == 200, me.text
    assert (me.json()["username"], me.json()["role"]) == (hub.alice.name, "admin")
    me = httpx.get(f"{hub.service_api}/me", headers=bob, timeout=30)
    assert me.status_code == 200, me.text
    assert (me.json()["username"], me.json()["role"]) == (hub.bob.name, "user")

    created = httpx.post(f"{hub.service_api}/secrets", headers=alice, timeout=30,
                         json={"name": "SCRIPTED", "value": "scripted-value-1234"})
    assert created.status_code == 201, created.text
    refused = httpx.post(f"{hub.service_api}/secrets", headers=bob, timeout=30,
                         json={"name": "BOBS", "value": "bobs-value-12345"})
    assert refused.status_code == 403, refused.text
    no_access = hub.auth(hub.alice, scopes=["read:users:name!user"])
    assert httpx.get(f"{hub.service_api}/me", headers=no_access,
                     timeout=30).status_code in (401, 403)
    assert httpx.delete(f"{hub.service_api}/secrets/SCRIPTED", headers=alice,
                        timeout=30).status_code == 204


def test_the_documented_cli_with_a_hub_token(jupyterhub: Hub, seeded: Any) -> None:
    """docs/team-deployment.md's CLI line, as written: alice's Hub API token manages secrets
    from a shell; bob's is refused and changes nothing."""
    hub = jupyterhub
    script = docs_block("test: cli")
    script = "\n".join(line for line in script.splitlines() if not line.startswith("export "))
    script = script.replace("https://hub.example.org/services/secrets/", hub.service_url)
    value = f"canary-{secrets.token_hex(16)}"
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "OPENAI_KEY": value,
           "HOME": str(hub.root), "JUPYTER_CONFIG_DIR": str(hub.root / "cli-config")}

    def run(user: HubUser) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True,
                              text=True, timeout=120, env={
                                  **env, "JUPYTER_SECRETS_ADMIN_TOKEN": hub.token(user)})

    refused = run(hub.bob)
    assert refused.returncode != 0 and _admin(hub, "GET", "secrets/OPENAI_API_KEY"
                                              ).status_code == 404, refused.stderr
    done = run(hub.alice)
    assert done.returncode == 0, done.stderr
    record = _admin(hub, "GET", "secrets/OPENAI_API_KEY").json()
    assert (record["owner"], record["allowed_hosts"], record["shared_with"]) == (
        hub.alice.name, ["api.openai.com"], {"users": [], "groups": ["analysts"]})
    assert _stored(hub, "OPENAI_API_KEY") == (1, value)
    for output in (refused.stdout, refused.stderr, done.stdout, done.stderr, hub.log()):
        assert value not in output
    assert _admin(hub, "DELETE", "secrets/OPENAI_API_KEY").status_code == 204


# -- bob's kernel ------------------------------------------------------------------------------


def test_bob_kernel_calls_a_connection_through_the_service(
    jupyterhub: Hub, seeded: Any, bob_kernel: str
) -> None:
    """Client mode under the Hub: the kernel's URL is the service (through the Hub's proxy),
    its token a kernel token minted at the request of bob's server with its Hub token; the
    OpenAI SDK streams through connection ``llm``."""
    hub = jupyterhub
    result = hub.run_json(hub.bob, bob_kernel, textwrap.dedent("""
        import json, os
        import jupyter_secrets as js
        from openai import OpenAI
        client = OpenAI(**js.connection("llm").sdk_kwargs())
        stream = client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True)
        pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
        print(json.dumps({"url": os.environ.get("JUPYTER_SECRETS_URL", ""),
                          "token": os.environ.get("JUPYTER_SECRETS_TOKEN", "")[:4],
                          "hub_token": bool(os.environ.get("JUPYTERHUB_API_TOKEN")),
                          "names": js.names(), "connections": js.connections(),
                          "pieces": pieces}))
    """))
    assert result["url"].rstrip("/") == hub.service_api
    assert result["token"] == "jsk_"
    assert "".join(result["pieces"]) == CONTENT and len([p for p in result["pieces"] if p]) > 1
    upstream_call = [r for r in seeded.requests if r.path == "/v1/chat/completions"][-1]
    assert upstream_call.headers["Authorization"] == f"Bearer {seeded.api_key}"
    assert set(result["connections"]) == {"up", "llm"}, "fin is shared with finance only"
    assert "CANARY" in result["names"]
    log = _admin(hub, "GET", "audit", params={"user": hub.bob.name}).json()["events"]
    assert any(e["action"] == "proxy_call" and e["connection"] == "llm" for e in log)


def test_the_documented_check_from_a_users_terminal(jupyterhub: Hub, seeded: Any) -> None:
    """The page's check line, run as bob with his server's environment (what a terminal in
    his JupyterLab has): the service answers, with his server's Hub token, with his name."""
    hub = jupyterhub
    hub.start_server(hub.bob)
    run = subprocess.run(["bash", "-c", docs_block("test: check")], capture_output=True,
                         text=True, timeout=60, env=hub.server_env(hub.bob),
                         **hub.bob.os.popen_kwargs())  # type: ignore[call-overload]
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["username"] == hub.bob.name, run.stdout


def test_a_secret_shared_with_another_group_is_invisible_and_unusable_for_bob(
    jupyterhub: Hub, seeded: Any, bob_kernel: str, alice_kernel: str
) -> None:
    """Sharing by Hub groups: bob (analysts) neither sees nor uses FINANCE_KEY or connection
    fin (hidden ones look missing); alice (finance) uses both; bob's ANALYSTS_KEY call is
    let through by group analysts, a group only the Hub knows of."""
    hub = jupyterhub
    code = textwrap.dedent(f"""
        import json
        import jupyter_secrets as js
        from jupyter_secrets.client import SecretsClientError
        out = {{"names": js.names(), "connections": js.connections()}}
        for name in ("FINANCE_KEY", "ANALYSTS_KEY"):
            try:
                r = js.request("GET", "{seeded.url}/echo/" + name,
                               headers={{"X-Key": "{{{{secrets." + name + "}}}}"}})
                out[name] = r.status_code
            except SecretsClientError as error:
                out[name] = error.status
        try:
            out["fin"] = js.connection("fin").get("/echo/fin").status_code
        except SecretsClientError as error:
            out["fin"] = error.status
        print(json.dumps(out))
    """)
    bob = hub.run_json(hub.bob, bob_kernel, code)
    assert "FINANCE_KEY" not in bob["names"] and "fin" not in bob["connections"]
    assert bob["FINANCE_KEY"] == 422, "as if it did not exist"
    assert bob["fin"] == 404
    assert "ANALYSTS_KEY" in bob["names"] and bob["ANALYSTS_KEY"] == 200
    alice = hub.run_json(hub.alice, alice_kernel, code)
    assert "FINANCE_KEY" in alice["names"] and "fin" in alice["connections"]
    assert (alice["FINANCE_KEY"], alice["fin"]) == (200, 200)
    log = _admin(hub, "GET", "audit", params={"user": hub.bob.name}).json()["events"]
    grants = {tuple(e["secrets"]): e.get("grant") for e in log if e["action"] == "request_call"}
    assert grants[("ANALYSTS_KEY",)] == "group:analysts"


ESCALATE = textwrap.dedent(r'''
    # After tests/attacker.py (or OWN_CREDENTIALS), in the same kernel: every credential it
    # found, at the Hub.
    import json, os
    import httpx
    HUB = os.environ["JUPYTERHUB_API_URL"].rstrip("/")
    ME = os.environ["JUPYTERHUB_USER"]
    scopes, minted = set(), set()
    with httpx.Client(timeout=20, trust_env=False) as client:
        for credential in sorted(credentials):
            headers = {"Authorization": f"token {credential}"}
            r = client.get(f"{HUB}/user", headers=headers)
            if r.status_code == 200:
                scopes.update(r.json().get("scopes", []))
            for body in ({"scopes": ["custom:secrets:admin"]}, {}):
                r = client.post(f"{HUB}/users/{ME}/tokens", headers=headers, json=body)
                minted.add(r.status_code)
    print(json.dumps({"hub_scopes": sorted(scopes), "token_requests": sorted(minted)}))
''')


def _attack(hub: Hub, user: HubUser, kernel_id: str, seeded: Any, attack: str) -> Any:
    result = hub.run_json(user, kernel_id, attack, timeout=600)
    escalation = hub.run_json(user, kernel_id, ESCALATE)
    found = {d for ds in result["found"].values() for d in ds}
    for value in (CANARY, FINANCE_VALUE, ANALYSTS_VALUE, hub.master_key, hub.admin_token,
                  seeded.api_key):
        assert digest(value) not in found
    assert {"jsk_", "other"} <= set(result["credential_kinds"]), "it found its credentials"
    assert result["scanned"]["environs"] >= 2
    for attempt, statuses in result["outcomes"].items():
        assert set(statuses) <= {401, 403}, (attempt, statuses)
    assert result["call_status"] == 200 and result["call_scrubbed"]
    assert "custom:secrets:admin" not in escalation["hub_scopes"]
    assert set(escalation["token_requests"]) <= {401, 403}, escalation
    after = _admin(hub, "GET", "secrets/CANARY").json()
    assert (after["version"], after["placements"]) == (1, ["header"])
    assert after["allowed_hosts"] == [f"127.0.0.1:{seeded.port}"]
    names = {c["name"] for c in _admin(hub, "GET", "connections").json()["connections"]}
    assert "evil" not in names and "PLANTED" not in {
        s["name"] for s in _admin(hub, "GET", "secrets").json()["secrets"]}
    for value in (CANARY, FINANCE_VALUE, ANALYSTS_VALUE, hub.master_key, hub.admin_token):
        assert value not in hub.log()
    return result


def test_hostile_code_in_bob_kernel_finds_nothing_that_manages(
    jupyterhub: Hub, seeded: Any, bob_kernel: str
) -> None:
    """tests/attacker.py in bob's kernel: no value, no key, no admin credential in any file
    or process it can read; every admin attempt with everything it found is refused; the
    Hub mints it no token with more scopes; calls by name still work."""
    result = _attack(jupyterhub, jupyterhub.bob, bob_kernel, seeded, ATTACK)
    assert result["scanned"]["files"] > 100


OWN_CREDENTIALS = textwrap.dedent(r'''
    # Every credential of the kernel's own server and of the kernel, at every admin route.
    import glob, json, os
    import httpx
    API = os.environ["JUPYTER_SECRETS_URL"].rstrip("/")
    credentials = set()
    for proc in {"self", str(os.getppid())}:
        with open(f"/proc/{proc}/environ", "rb") as handle:
            for entry in handle.read().split(b"\0"):
                value = entry.partition(b"=")[2].decode("utf-8", "replace")
                if len(value) >= 20 and " " not in value and "/" not in value:
                    credentials.add(value)
    for info in glob.glob(os.path.expanduser("~/.local/share/jupyter/runtime/jpserver-*.json")):
        with open(info) as handle:
            credentials.add(json.load(handle).get("token", ""))
    credentials.discard("")
    ATTEMPTS = [
        ("PATCH", "secrets/CANARY", {"allowed_hosts": ["evil.example"]}),
        ("PUT", "secrets/CANARY", {"value": "attacker-chosen-1"}),
        ("POST", "secrets", {"name": "PLANTED", "value": "attacker-chosen-1"}),
        ("POST", "connections", {"name": "evil", "base_url": "https://evil.example",
                                 "secret": "CANARY"}),
        ("GET", "audit", None),
    ]
    outcomes = {}
    with httpx.Client(timeout=20, trust_env=False) as client:
        for credential in sorted(credentials):
            for method, path, body in ATTEMPTS:
                r = client.request(method, f"{API}/{path}", json=body,
                                   headers={"Authorization": f"token {credential}"})
                outcomes.setdefault(f"{method} {path}", set()).add(r.status_code)
    print(json.dumps({"tried": len(credentials),
                      "hub_token": os.environ["JUPYTERHUB_API_TOKEN"] in credentials,
                      "outcomes": {k: sorted(v) for k, v in outcomes.items()}}))
''')


def test_a_secrets_admin_kernel_cannot_manage_either(
    jupyterhub: Hub, seeded: Any, alice_kernel: str
) -> None:
    """alice manages secrets from her browser, but code in her kernel holds only what her
    server holds (the Hub's ``server`` role, a kernel token): every credential of her
    kernel and her server is refused at every admin route, and the Hub mints it nothing.
    (The full file-and-process hunt runs in bob's kernel above.)"""
    hub = jupyterhub
    result = hub.run_json(hub.alice, alice_kernel, OWN_CREDENTIALS)
    assert result["hub_token"] and result["tried"] >= 2
    for attempt, statuses in result["outcomes"].items():
        assert set(statuses) <= {401, 403}, (attempt, statuses)
    escalation = hub.run_json(hub.alice, alice_kernel, ESCALATE)  # with what it just found
    assert "custom:secrets:admin" not in escalation["hub_scopes"]
    assert set(escalation["token_requests"]) <= {401, 403}, escalation


# -- alice's browser ----------------------------------------------------------------------------


def test_alice_adds_a_secret_and_a_connection_in_her_jupyterlab(
    jupyterhub: Hub, seeded: Any, request: pytest.FixtureRequest
) -> None:
    """Chromium logs in at the Hub as alice, opens her JupyterLab and, in the Secrets
    sidebar, adds a secret and a connection with the values typed there: the browser sends
    them to the service with alice's Hub login. bob's kernel then streams through the new
    connection. The values are found nowhere else."""
    from .browser.conftest import CHROMIUM, CHROMIUM_ARGS, Traffic, watch
    from .browser.pages import dom_text, open_sidebar, row, wait_for_status

    hub = jupyterhub
    alice = hub.alice
    value, key = f"canary-{secrets.token_hex(16)}", f"canary-{secrets.token_hex(16)}"
    hub.start_server(alice)
    ARTIFACTS.mkdir(exist_ok=True)
    traffic = Traffic()
    from playwright.sync_api import expect, sync_playwright

    with start_upstream(api_key=key) as upstream, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = watch(context.new_page(), traffic)
        try:
            page.goto(f"{hub.url}hub/login?next=/user/{alice.name}/lab")
            page.locator("#username_input").fill(alice.name)
            page.locator("#password_input").fill(alice.password)
            page.screenshot(path=str(ARTIFACTS / "hub-login.png"))
            page.locator("#login_submit").click()
            page.wait_for_function("() => window.jupyterapp !== undefined", timeout=90_000)
            page.evaluate("async () => { await window.jupyterapp.started; "
                          "await window.jupyterapp.restored; }")
            sidebar = open_sidebar(page)
            # The first use signs in at the service in a window of its own, which takes
            # the keyboard while it is open: type only once the sidebar says who we are.
            sidebar.locator(".jp-secrets-who", has_text=re.compile(r" · (admin|read-only)$")) \
                .wait_for(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "hub-sidebar.png"))

            sidebar.get_by_role("button", name="Add secret").click()
            sidebar.get_by_label("Name", exact=True).fill("team key")
            sidebar.get_by_label("Allowed hosts").fill(f"127.0.0.1:{upstream.port}")
            typed = sidebar.get_by_label("Value", exact=True)
            typed.press_sequentially(value)
            expect(typed).to_have_value(value)  # every key reached the field
            page.screenshot(path=str(ARTIFACTS / "hub-sidebar-add.png"))
            sidebar.get_by_role("button", name="Save").click()
            wait_for_status(sidebar, "Added TEAM_KEY (version 1).")
            row(sidebar, "TEAM_KEY").wait_for()

            sidebar.get_by_role("tab", name="Connections").click()
            sidebar.get_by_role("button", name="New connection").click()
            form = sidebar.locator("form")
            form.get_by_label("Base URL").fill(f"{upstream.url}/v1")
            form.get_by_label("Key", exact=True).press_sequentially(key)
            expect(form.get_by_label("Key", exact=True)).to_have_value(key)
            page.screenshot(path=str(ARTIFACTS / "hub-sidebar-connection.png"))
            form.get_by_role("button", name="Create").click()
            wait_for_status(sidebar, "Created connection openai.")
            page.screenshot(path=str(ARTIFACTS / "hub-sidebar-done.png"))
            dom = dom_text(page)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "hub-failed.png"))  # what went wrong
            raise
        finally:
            context.close()
            browser.close()

        assert _stored(hub, "TEAM_KEY") == (1, value)
        assert _stored(hub, "OPENAI_CONNECTION_KEY")[1] == key
        record = _admin(hub, "GET", "secrets/TEAM_KEY").json()
        assert record["owner"] == alice.name, "the Hub login is who the service records"
        bob_kernel = request.getfixturevalue("bob_kernel")  # after the browser's part
        output = hub.run(hub.bob, bob_kernel, textwrap.dedent("""
            import jupyter_secrets as js
            from openai import OpenAI
            client = OpenAI(**js.connection("openai").sdk_kwargs())
            stream = client.chat.completions.create(
                model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True)
            print("".join(c.choices[0].delta.content or "" for c in stream if c.choices))
        """))
        assert output == CONTENT
        assert upstream.requests[-1].headers["Authorization"] == f"Bearer {key}"

    carriers = [(method, url.split("?")[0]) for method, url, body in traffic.requests
                if value in body or key in body]
    assert carriers == [("POST", f"{hub.service_api}/secrets"),
                        ("POST", f"{hub.service_api}/connections")]
    for canary in (value, key):
        assert_no_canary(canary, *(p for _, p in traffic.frames), where="websocket frame")
        assert_no_canary(canary, *(b for _, b in traffic.responses), where="response body")
        assert_no_canary(canary, dom, where="DOM")
        assert_no_canary(canary, hub.log(), where="Hub, service and servers' log")
        assert_no_canary(canary, output, where="bob's kernel")
    assert json.dumps(traffic.console).count(value) == 0
