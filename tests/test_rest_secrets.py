"""The admin REST API on a default (single-identity, token) server: its user is admin."""

from __future__ import annotations

import json
import re

from .helpers import assert_no_canary


async def test_create_then_list_and_get_show_metadata_only(api, canary, responses):
    status, body = await api(
        "POST", "secrets",
        body={"name": "openai-api key", "value": canary, "description": "team key",
              "allowed_hosts": ["API.OpenAI.com"]},
    )
    assert status == 201
    assert body["name"] == "OPENAI_API_KEY"
    assert body["version"] == 1
    assert body["kind"] == "user"
    assert body["allowed_hosts"] == ["api.openai.com"]
    assert body["description"] == "team key"
    assert body["owner"] and body["owner"] == body["updated_by"]
    assert "value" not in body

    status, listing = await api("GET", "secrets")
    assert status == 200
    assert [s["name"] for s in listing["secrets"]] == ["OPENAI_API_KEY"]

    status, one = await api("GET", "secrets", "openai-api-key")
    assert status == 200 and one["name"] == "OPENAI_API_KEY"
    assert_no_canary(canary, *responses, where="response")


async def test_duplicate_create_is_409_and_keeps_the_first(api, canary):
    assert (await api("POST", "secrets", body={"name": "TOKEN", "value": canary}))[0] == 201
    status, body = await api("POST", "secrets", body={"name": "token", "value": "other"})
    assert status == 409
    assert "already exists" in body["message"]
    _, one = await api("GET", "secrets", "TOKEN")
    assert one["version"] == 1


async def test_replace_bumps_version_and_patch_edits_metadata(api, canary):
    await api("POST", "secrets", body={"name": "K", "value": canary})
    status, body = await api("PUT", "secrets", "K", body={"value": canary + "-2"})
    assert status == 200 and body["version"] == 2
    status, body = await api(
        "PATCH", "secrets", "K", body={"description": "d", "allowed_hosts": ["*.example.com"]}
    )
    assert status == 200
    assert body["version"] == 2, "metadata edits do not change the value's version"
    assert body["description"] == "d" and body["allowed_hosts"] == ["*.example.com"]


async def test_replace_or_patch_of_missing_secret_is_404(api):
    assert (await api("PUT", "secrets", "NOPE", body={"value": "x"}))[0] == 404
    assert (await api("PATCH", "secrets", "NOPE", body={"description": "x"}))[0] == 404
    assert (await api("GET", "secrets", "NOPE"))[0] == 404


async def test_delete_is_204_then_404(api, canary):
    await api("POST", "secrets", body={"name": "GONE", "value": canary})
    assert (await api("DELETE", "secrets", "GONE"))[0] == 204
    assert (await api("DELETE", "secrets", "GONE"))[0] == 404
    _, listing = await api("GET", "secrets")
    assert listing["secrets"] == []


async def test_values_are_kept_byte_for_byte(runtime, api, jp_serverapp):
    value = "  spaced\tvalue with ünïcode \n"
    await api("POST", "secrets", body={"name": "EXACT", "value": value})
    service = runtime.secrets
    from jupyter_secrets.crypto import open_sealed, reveal

    record, sealed = service.store.get_sealed("EXACT")
    assert reveal(open_sealed(service.keyring, record.identity, sealed)) == value


async def test_owner_filter(api, canary):
    await api("POST", "secrets", body={"name": "MINE", "value": canary})
    _, me = await api("GET", "me")
    _, mine = await api("GET", "secrets", params={"owner": "me"})
    assert [s["owner"] for s in mine["secrets"]] == [me["username"]]
    status, body = await api("GET", "secrets", params={"owner": "someone"})
    assert status == 422 and "owner" in body["message"]


async def test_kind_filter_hides_system_secrets_by_default(runtime, api, jp_serverapp, canary):
    service = runtime.secrets
    service.create("integration", "SYS_KEY", canary, kind="system")
    await api("POST", "secrets", body={"name": "USER_KEY", "value": canary})
    _, default = await api("GET", "secrets")
    assert [s["name"] for s in default["secrets"]] == ["USER_KEY"]
    _, system = await api("GET", "secrets", params={"kind": "system"})
    assert [s["name"] for s in system["secrets"]] == ["SYS_KEY"]
    _, everything = await api("GET", "secrets", params={"kind": "all"})
    assert len(everything["secrets"]) == 2
    assert (await api("GET", "secrets", params={"kind": "bogus"}))[0] == 422


async def test_system_secrets_cannot_be_edited_through_the_user_api(runtime, api, canary):
    service = runtime.secrets
    service.create("integration", "SYS_KEY", canary, kind="system")
    for method, body in (("PUT", {"value": "x"}), ("PATCH", {"description": "x"}),
                         ("DELETE", None)):
        status, reply = await api(method, "secrets", "SYS_KEY", body=body)
        assert status == 409, method
        assert "system" in reply["message"]
    status, _ = await api("PUT", "secrets", body={"secrets": [{"key": "SYS_KEY", "value": None}]})
    assert status == 409
    assert (await api("POST", "secrets", body={"name": "SYS_KEY", "value": "x"}))[0] == 409


async def test_me_reports_admin_on_a_single_user_server(api):
    status, me = await api("GET", "me")
    assert status == 200
    assert me["role"] == "admin" and me["can_write"] and me["can_list"]


async def test_openapi_document_lists_every_route(api, jp_serverapp):
    status, spec = await api("GET", "openapi.json")
    assert status == 200
    assert spec["openapi"].startswith("3.")
    assert spec["servers"][0]["url"].endswith("/api/secrets/v1")
    from jupyter_secrets.api import ROUTES

    routes = {
        "/" + re.sub(r"\(\?P<(\w+)>\[\^/\]\+\)", r"{\1}", pattern)
        .replace("{connection}/?(?P<path>.*)", "{connection}/{path}")
        for pattern, _ in ROUTES
    }
    assert routes == set(spec["paths"])
    for path, operations in spec["paths"].items():
        for verb, operation in operations.items():
            if verb != "parameters":
                assert operation["responses"], f"{verb} {path} documents its responses"


async def test_responses_are_json_and_not_cached(jp_fetch):
    response = await jp_fetch("api", "secrets", "v1", "secrets")
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Cache-Control"] == "no-store"
    json.loads(response.body)


async def test_the_served_contract_lists_the_presets_the_code_has(api):
    from jupyter_secrets.services.presets import PRESETS

    _, spec = await api("GET", "openapi.json")
    schemas = spec["components"]["schemas"]
    for schema in ("Connection", "ConnectionInput"):
        assert schemas[schema]["properties"]["preset"]["enum"] == list(PRESETS)
    _, presets = await api("GET", "presets")
    assert [p["name"] for p in presets["presets"]] == list(PRESETS)
