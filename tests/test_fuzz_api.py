"""Arbitrary JSON at every route: never a 5xx, and a refused request writes nothing.

Property-based (hypothesis) against a real server subprocess: bodies are any JSON, or
objects whose keys are the route's own fields with any JSON values, plus lone surrogates,
deep nesting and non-Latin-1 text, which is where earlier versions answered 500. Then
schemathesis walks the OpenAPI document the server serves.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_secrets.api.secrets import openapi_spec

FIELDS = {
    ("POST", "secrets"): ["name", "value", "description", "allowed_hosts", "placements"],
    ("PUT", "secrets"): ["secrets"],
    ("PUT", "secrets/EXISTING"): ["value"],
    ("PATCH", "secrets/EXISTING"): ["description", "allowed_hosts", "placements"],
    ("POST", "connections"): ["name", "preset", "base_url", "secret", "auth", "headers",
                              "description", "value"],
    ("PATCH", "connections/zulu"): ["preset", "base_url", "secret", "auth", "headers",
                                    "description", "value"],
    ("POST", "request"): ["method", "url", "headers", "params", "body", "body_base64", "json"],
    ("POST", "scan"): ["path", "redact"],
}
ODD_TEXT = st.sampled_from([
    "\ud800", "x\udfffy", "ключ", "✓", "a\r\nb", "\x00", "", " ", "{{secrets.EXISTING}}",
    "http://[::1", "http://a b/", "~/x", "../../etc", "https://evil.example/{{secrets.X}}",
])
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | st.text(max_size=40) | ODD_TEXT)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10) | ODD_TEXT, inner, max_size=4),
                    max_leaves=20)


# Plausible values per field (so a body gets past the first check and reaches deeper code),
# mixed with odd and arbitrary ones.
TEXTISH = st.text(max_size=30) | ODD_TEXT
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "name": st.sampled_from(["FUZZ_A", "fuzz-b", "zulu2", "EXISTING"]) | TEXTISH,
    "key": st.sampled_from(["FUZZ_A", "EXISTING"]) | TEXTISH,
    "value": TEXTISH | st.none(),
    "description": TEXTISH,
    "allowed_hosts": st.lists(st.sampled_from(["api.example.com", "*.x.org", "127.0.0.1:1"])
                              | TEXTISH, max_size=3),
    "placements": st.lists(st.sampled_from(["header", "query", "path", "body"]) | TEXTISH,
                           max_size=3),
    "secrets": st.lists(st.fixed_dictionaries({"key": st.sampled_from(["FUZZ_A", "EXISTING"])
                                               | TEXTISH, "value": TEXTISH | st.none()}),
                        max_size=3),
    "preset": st.sampled_from(["openai", "anthropic", "http"]) | TEXTISH,
    "base_url": st.sampled_from(["https://api.example.com/v1", "http://127.0.0.1:9"])
    | TEXTISH,
    "url": st.sampled_from(["http://127.0.0.1:9/x?k={{secrets.EXISTING}}",
                            "https://api.example.com/{{secrets.EXISTING}}"]) | TEXTISH,
    "secret": st.sampled_from(["EXISTING", "MISSING"]) | TEXTISH,
    "auth": st.fixed_dictionaries({"scheme": st.sampled_from(["bearer", "header", "query"])
                                   | TEXTISH}, optional={"header": TEXTISH, "param": TEXTISH}),
    "headers": st.dictionaries(st.sampled_from(["X-A", "Authorization"]) | TEXTISH,
                               TEXTISH, max_size=3),
    "params": st.dictionaries(TEXTISH, TEXTISH | st.integers(), max_size=3),
    "method": st.sampled_from(["GET", "POST", "get"]) | TEXTISH,
    "body": TEXTISH,
    "body_base64": st.sampled_from(["aGk=", "!!"]) | TEXTISH,
    "json": JSON,
    "path": st.sampled_from(["", "x", "../.."]) | TEXTISH,
    "redact": st.booleans() | TEXTISH,
}


def _bodies(fields: list[str]) -> st.SearchStrategy[str]:
    shaped = st.fixed_dictionaries({}, optional={f: PLAUSIBLE[f] | JSON for f in fields})
    nested = st.integers(min_value=60, max_value=5000).map(lambda n: '{"a":' * n + "1" + "}" * n)
    return (shaped | JSON).map(json.dumps) | nested | st.text(max_size=50)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _state(client: httpx.Client) -> tuple[Any, Any]:
    secrets = client.get("secrets", params={"kind": "all"}).json()["secrets"]
    connections = client.get("connections").json()["connections"]
    return ([(s["name"], s["version"], s["updated_at"], s["placements"]) for s in secrets],
            [(c["name"], c["updated_at"]) for c in connections])


@pytest.fixture(scope="module")
def admin(live_server, live_upstream):
    with httpx.Client(base_url=f"{live_server.api}/", headers=live_server.admin,
                      timeout=30) as client:
        assert client.post("secrets", json={
            "name": "EXISTING", "value": live_upstream.api_key,
            "allowed_hosts": [f"127.0.0.1:{live_upstream.port}"]}).status_code == 201
        assert client.post("connections", json={
            "name": "zulu", "base_url": live_upstream.url, "secret": "EXISTING"},
        ).status_code == 201
        yield client


@pytest.mark.parametrize(("method", "path"), list(FIELDS))
def test_no_body_makes_a_5xx_and_refusals_write_nothing(admin, live_server, method, path):
    @settings(max_examples=120, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(body=_bodies(FIELDS[(method, path)]))
    def check(body: str) -> None:
        before = _state(admin)
        response = admin.request(method, path, content=body.encode("utf-8", "surrogatepass"),
                                 headers={"Content-Type": "application/json"})
        assert response.status_code < 500, (response.status_code, response.text)
        if response.status_code >= 400:
            assert response.json()["message"], "every refusal says why"
            assert _state(admin) == before, "a refused request wrote something"

    check()
    assert "Traceback" not in live_server.log(), "the server logged an internal error"


@settings(max_examples=150, deadline=None, database=None, derandomize=True)
@given(params=st.dictionaries(
    st.sampled_from(["secret", "user", "since", "action", "limit", "before", "owner", "kind",
                     "x"]), (st.text(max_size=20) | ODD_TEXT).filter(_utf8),
    max_size=4))
def test_query_arguments_never_make_a_5xx(admin, params):
    for path in ("audit", "secrets", "connections", "secrets/EXISTING"):
        response = admin.get(path, params=params)
        assert response.status_code < 500, (path, params, response.text)


# The contract as the server serves it (the same function builds both), loaded at collection.
schema = schemathesis.openapi.from_dict(openapi_spec())


@schema.parametrize()
@settings(max_examples=25, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_the_served_openapi_contract_holds(case, admin, live_server):
    case.call_and_validate(base_url=live_server.api, headers=live_server.admin,
                           checks=[schemathesis.checks.not_a_server_error])
