"""Bad input gets a clear 4xx JSON message and changes nothing."""

from __future__ import annotations

import json

import pytest

from .helpers import assert_no_canary


@pytest.fixture
def small_limits(secrets_config):
    secrets_config.update(max_value_bytes=32, max_batch_size=3, max_request_bytes=4096)


async def names_and_versions(api) -> dict[str, int]:
    _, listing = await api("GET", "secrets")
    return {s["name"]: s["version"] for s in listing["secrets"]}


@pytest.mark.parametrize("name", ["", "   ", "1ABC", "A.B", "a/b", "ÄPFEL", "X" * 129, 42, None])
async def test_bad_names_are_422(api, name):
    status, body = await api("POST", "secrets", body={"name": name, "value": "v"})
    assert status == 422
    assert "name" in body["message"]
    assert await names_and_versions(api) == {}


@pytest.mark.parametrize(("value", "words"), [
    ("", "empty"), (None, "required"), (5, "string"), (["x"], "string"),
])
async def test_bad_values_are_422(api, value, words):
    status, body = await api("POST", "secrets", body={"name": "K", "value": value})
    assert status == 422
    assert words in body["message"]


@pytest.mark.usefixtures("small_limits")
async def test_oversized_value_is_413_and_not_quoted(api, canary):
    big = canary * 4
    status, body = await api("POST", "secrets", body={"name": "K", "value": big})
    assert status == 413
    assert "at most 32 bytes" in body["message"]
    assert_no_canary(canary, body["message"])
    assert await names_and_versions(api) == {}


@pytest.mark.usefixtures("small_limits")
async def test_oversized_body_is_413(api):
    status, body = await api("POST", "secrets", raw='{"name": "K", "value": "' + "x" * 5000 + '"}')
    assert status == 413
    assert "limit" in body["message"]


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '"text"', "\xff\xfe", ""])
async def test_malformed_json_is_400(api, raw):
    status, body = await api("POST", "secrets", raw=raw)
    assert status == 400
    assert "JSON" in body["message"]


async def test_unknown_and_missing_fields_are_422(api):
    status, body = await api("POST", "secrets", body={"name": "K", "value": "v", "colour": 1})
    assert status == 422 and "colour" in body["message"]
    status, body = await api("POST", "secrets", body={"name": "K"})
    assert status == 422 and "value" in body["message"]
    status, body = await api("PATCH", "secrets", "K", body={})
    assert status == 422


async def test_bad_allowed_hosts_are_422(api):
    for hosts in ("api.example.com", ["https://api.example.com/path"], [""], [7], ["*"]):
        status, body = await api(
            "POST", "secrets", body={"name": "K", "value": "v", "allowed_hosts": hosts}
        )
        assert status == 422, hosts
        assert body["message"]
    assert await names_and_versions(api) == {}


async def test_description_must_be_short_text(api):
    for description in (["x"], "d" * 1025):
        status, _ = await api(
            "POST", "secrets", body={"name": "K", "value": "v", "description": description}
        )
        assert status == 422


# -- the batch --------------------------------------------------------------------------------


async def test_batch_upserts_and_deletes_atomically(api, canary):
    await api("POST", "secrets", body={"name": "OLD", "value": canary})
    await api("POST", "secrets", body={"name": "KEEP", "value": canary})
    status, body = await api("PUT", "secrets", body={"secrets": [
        {"key": "new-one", "value": canary},
        {"key": "KEEP", "value": canary + "2"},
        {"key": "OLD", "value": None},
        {"key": "NEVER_EXISTED", "value": None},
    ]})
    assert status == 200
    assert body == {"data": {"upserted_keys": ["NEW_ONE", "KEEP"], "deleted_keys": ["OLD"],
                             "warnings": {}}}
    assert await names_and_versions(api) == {"KEEP": 2, "NEW_ONE": 1}


@pytest.mark.parametrize(("item", "words"), [
    ({"key": "B"}, "no value"),
    ({"value": "x"}, "key"),
    ({"key": "B", "value": ""}, "empty"),
    ({"key": "9B", "value": "x"}, "not a valid secret name"),
    ({"key": "B", "value": "x", "extra": 1}, "extra"),
    ("B=x", "object"),
    ({"key": "A", "value": "again"}, "more than once"),
])
async def test_one_bad_batch_item_changes_nothing(api, canary, item, words):
    await api("POST", "secrets", body={"name": "A", "value": canary})
    await api("POST", "secrets", body={"name": "C", "value": canary})
    before = await names_and_versions(api)
    status, body = await api("PUT", "secrets", body={"secrets": [
        {"key": "A", "value": "changed"}, {"key": "C", "value": None}, item,
    ]})
    assert status == 422
    assert words in body["message"]
    assert "secrets[2]" in body["message"] or "more than once" in body["message"]
    assert await names_and_versions(api) == before


async def test_batch_interrupted_inside_the_transaction_leaves_the_store_unchanged(
    runtime, api, jp_serverapp, canary
):
    """The third item passes validation but the store refuses it (a system secret): the
    first two, already written inside the transaction, are rolled back."""
    service = runtime.secrets
    service.create("integration", "SYS", canary, kind="system")
    await api("POST", "secrets", body={"name": "A", "value": canary})
    before = await names_and_versions(api)
    status, body = await api("PUT", "secrets", body={"secrets": [
        {"key": "A", "value": "changed"},
        {"key": "NEW", "value": "x"},
        {"key": "SYS", "value": "x"},
    ]})
    assert status == 409
    assert "SYS" in body["message"]
    assert await names_and_versions(api) == before
    assert service.store.get_secret("NEW") is None


@pytest.mark.usefixtures("small_limits")
async def test_huge_batches_are_refused(api):
    items = [{"key": f"K{i}", "value": "v"} for i in range(4)]
    status, body = await api("PUT", "secrets", body={"secrets": items})
    assert status == 413
    assert "at most 3" in body["message"]
    assert await names_and_versions(api) == {}


async def test_batch_body_must_hold_a_list(api):
    status, body = await api("PUT", "secrets", body={"secrets": {"key": "A"}})
    assert status == 422
    status, body = await api("PUT", "secrets", body={})
    assert status == 422 and "secrets" in body["message"]


async def test_whitespace_only_values_are_refused_and_edges_warned(api, canary):
    for value in (" ", "\t\n", "   "):
        status, body = await api("POST", "secrets", body={"name": "W", "value": value})
        assert status == 422 and "only whitespace" in body["message"]
    assert (await api("GET", "secrets", "W"))[0] == 404
    status, body = await api("POST", "secrets", body={"name": "W", "value": f"{canary}\n"})
    assert status == 201 and "whitespace" in body["warnings"][0]
    status, body = await api("PUT", "secrets", "W", body={"value": canary})
    assert status == 200 and body["warnings"] == []
    status, body = await api("PUT", "secrets", body={"secrets": [
        {"key": "W", "value": f" {canary}"}, {"key": "X", "value": canary}]})
    assert status == 200 and list(body["data"]["warnings"]) == ["W"]
    assert canary not in json.dumps(body)


# -- bad input is a 4xx, never a 500 (found by an attacker's fuzzing) ---------------------------


def _nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [65, 100_000])
async def test_deeply_nested_json_is_a_4xx(api, depth):
    for path, method in ((("secrets",), "POST"), (("request",), "POST"), (("secrets",), "PUT")):
        status, body = await api(method, *path, raw=_nested(depth))
        assert status in (400, 422), (path, status)
        assert body["message"]
    assert (await api("GET", "secrets"))[1]["secrets"] == []


@pytest.mark.parametrize("field", ["value", "description", "name"])
async def test_a_lone_surrogate_is_a_4xx_and_writes_nothing(api, field):
    body = {"name": "S", "value": "value-1234", "description": "d"}
    raw = json.dumps(body).replace(f'"{body[field]}"', '"x\\ud800"')
    status, reply = await api("POST", "secrets", raw=raw)
    assert status == 422 and "surrogate" in reply["message"]
    assert (await api("GET", "secrets"))[1]["secrets"] == []


@pytest.mark.parametrize("where", ["url", "header", "body", "params"])
async def test_a_lone_surrogate_in_a_request_is_a_4xx(api, example_token, upstream, where):
    call = {"url": f"{upstream.url}/echo", "headers": {"X": "{{secrets.EXAMPLE_TOKEN}}"}}
    raw = json.dumps({
        "url": {**call, "url": f"{upstream.url}/echo/SURROGATE"},
        "header": {**call, "headers": {"X": "{{secrets.EXAMPLE_TOKEN}}SURROGATE"}},
        "body": {**call, "method": "POST", "body": "SURROGATE"},
        "params": {**call, "params": {"q": "SURROGATE"}},
    }[where]).replace("SURROGATE", "\\udfff")
    status, reply = await api("POST", "request", raw=raw)
    assert status == 422 and "surrogate" in reply["message"]
    assert upstream.requests == []


async def test_headers_only_carry_latin_1(api, example_token, upstream, runtime):
    status, reply = await api("POST", "request", body={
        "url": f"{upstream.url}/echo", "headers": {"X": "{{secrets.EXAMPLE_TOKEN}} ✓"}})
    assert status == 422 and "Latin-1" in reply["message"]
    runtime.secrets.create("admin", "UNI", "ключ-1234567", allowed_hosts=[example_token])
    status, reply = await api("POST", "request", body={
        "url": f"{upstream.url}/echo", "headers": {"X": "{{secrets.UNI}}"}})
    assert status == 403 and "Latin-1" in reply["message"] and "ключ" not in reply["message"]
    status, _ = await api("POST", "request", body={
        "url": f"{upstream.url}/echo", "headers": {"X": "caf\u00e9 {{secrets.EXAMPLE_TOKEN}}"}})
    assert status == 200, "Latin-1 itself is fine"


@pytest.mark.parametrize(("url", "words"), [
    ("http://[::1", "not a valid URL"),
    ("http://a b.example/", "invalid host"),
    ("http://example.com:99999/", "not a valid URL"),
    ("ftp://example.com/", "http(s) URL"),
    ("http:///nohost", "http(s) URL"),
])
async def test_bad_urls_are_a_422(api, example_token, url, words):
    status, reply = await api("POST", "request", body={
        "url": url, "headers": {"X": "{{secrets.EXAMPLE_TOKEN}}"}})
    assert status == 422 and words in reply["message"], reply
    status, reply = await api("POST", "connections", body={
        "name": "bad", "base_url": url, "auth": {"scheme": "none"}})
    assert status == 422 and words in reply["message"], reply
    assert (await api("GET", "connections"))[1]["connections"] == []


@pytest.mark.parametrize("body", [
    {"name": "c", "preset": ["openai"]},
    {"name": "c", "preset": {"x": 1}},
    {"name": "c", "auth": {"scheme": ["bearer"]}},
    {"name": "c", "auth": ["bearer"]},
    {"name": ["c"]},
    {"name": "c", "headers": ["X"]},
    {"name": "c", "headers": {"X": 1}},
    {"name": "c", "base_url": 5},
])
async def test_odd_connection_shapes_are_a_422(api, body):
    status, reply = await api("POST", "connections", body=body)
    assert status == 422, reply
    assert (await api("GET", "connections"))[1]["connections"] == []
