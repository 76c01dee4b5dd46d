"""The egress proxy and ad-hoc requests against a real upstream on loopback."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import tornado

from .helpers import assert_no_canary, http, stream_reads

OVERHEAD = "X-Jupyter-Secrets-Overhead-Ms"


async def test_proxy_injects_the_key_and_strips_the_callers_credentials(
    up_connection, upstream, server_url, auth, canary, jp_serverapp
):
    r = await http("POST", f"{server_url}/proxy/up/v1/chat/completions", headers={
        **auth, "Cookie": "_xsrf=abc; username-x=y", "X-Custom": "kept"},
        json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "Hello from upstream"
    assert float(r.headers[OVERHEAD]) >= 0
    (seen,) = upstream.requests
    assert seen.headers["Authorization"] == f"Bearer {canary}"
    assert seen.headers["X-Custom"] == "kept"
    assert "Cookie" not in seen.headers
    assert jp_serverapp.identity_provider.token not in json.dumps(dict(seen.headers))
    assert_no_canary(canary, r.text, json.dumps(dict(r.headers)))


async def test_cookies_an_upstream_sets_never_ride_on_a_later_call(
    up_connection, upstream, server_url, auth
):
    """The outbound client is shared by every caller: it must keep no cookie jar, or one
    user's upstream session would be sent with the next user's calls."""
    first = await http("GET", f"{server_url}/proxy/up/set-cookie",
                       params={"value": "alice-session"}, headers=auth)
    later = await http("GET", f"{server_url}/proxy/up/echo/later", headers=auth)
    assert first.status_code == 200
    assert "alice-session" not in json.dumps(first.headers.multi_items())
    assert later.status_code == 200
    assert "Cookie" not in upstream.requests[-1].headers
    assert "alice-session" not in later.text


async def test_echoed_values_are_scrubbed_from_headers_and_body(
    up_connection, upstream, server_url, auth, canary
):
    r = await http("GET", f"{server_url}/proxy/up/echo/anything", headers=auth)
    h = await http("GET", f"{server_url}/proxy/up/echo-header",
                   params={"name": "Authorization"}, headers=auth)
    assert r.status_code == 200
    assert "[REDACTED:UP_CONNECTION_KEY]" in r.text
    assert h.headers["X-Echo"] == "Bearer [REDACTED:UP_CONNECTION_KEY]"
    assert_no_canary(canary, r.text, h.text, json.dumps(dict(r.headers)),
                     json.dumps(dict(h.headers)))


async def test_a_whole_non_json_answer_keeps_its_content_type(up_connection, server_url, auth):
    """A body that arrives whole goes out with finish(): nothing on the way may relabel it."""
    r = await http("GET", f"{server_url}/proxy/up/report.csv", headers=auth)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.text == "name,value\nrows,2\n"


async def test_the_answer_has_one_date_and_one_server_header(up_connection, server_url, auth):
    """The upstream's replace the ones tornado starts every answer with, never add to them."""
    r = await http("GET", f"{server_url}/proxy/up/report.csv", headers=auth)
    assert len(r.headers.get_list("date")) == 1
    assert r.headers.get_list("server") == ["TornadoServer/" + tornado.version]


async def test_sse_streams_chunk_by_chunk_before_the_upstream_finishes(
    up_connection, upstream, server_url, auth, canary
):
    upstream.stream_delay = 0.3  # slow enough to see events arrive one by one
    r, reads = await stream_reads(
        "POST", f"{server_url}/proxy/up/v1/chat/completions", headers=auth,
        json={"model": "m", "stream": True, "messages": []},
    )
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["X-Accel-Buffering"] == "no"
    assert r.headers["Cache-Control"] == "no-cache"
    body = b"".join(c for _, c in reads).decode()
    assert body.count("data: ") >= 6 and body.rstrip().endswith("data: [DONE]")
    assert len(reads) >= 5, "events arrive as separate chunks, not merged into one"
    assert reads[0][0] < reads[-1][0] - 0.6, "the first event arrives long before the last"
    assert_no_canary(canary, body)


async def test_mid_stream_upstream_failure_breaks_the_stream(
    up_connection, server_url, auth
):
    with pytest.raises(httpx.RemoteProtocolError):
        await stream_reads("GET", f"{server_url}/proxy/up/stream-then-fail", headers=auth)


async def test_upstream_errors_pass_through_and_proxy_errors_are_marked(
    up_connection, server_url, auth
):
    upstream_404 = await http("GET", f"{server_url}/proxy/up/status/404", headers=auth)
    missing = await http("GET", f"{server_url}/proxy/nope/x", headers=auth)
    assert upstream_404.status_code == 404
    assert "X-Jupyter-Secrets-Error" not in upstream_404.headers
    assert missing.status_code == 404
    assert missing.headers["X-Jupyter-Secrets-Error"] == "1"
    assert "No connection named nope" in missing.json()["message"]


@pytest.fixture
def short_idle_timeout(secrets_config):
    secrets_config["idle_timeout"] = 0.5


@pytest.mark.usefixtures("short_idle_timeout")
async def test_slow_upstream_is_a_504_with_a_message(up_connection, server_url, auth):
    r = await http("GET", f"{server_url}/proxy/up/slow", params={"delay": "3"}, headers=auth)
    assert r.status_code == 504
    assert "did not answer in time" in r.json()["message"]


async def test_unreachable_upstream_is_a_502(api, server_url, auth, canary):
    await api("POST", "connections", body={
        "name": "down", "base_url": "http://127.0.0.1:9", "value": canary})
    r = await http("GET", f"{server_url}/proxy/down/x", headers=auth)
    assert r.status_code == 502
    assert "Could not reach 127.0.0.1" in r.json()["message"]


# -- ad-hoc requests with placeholders ---------------------------------------------------------


async def test_request_fills_placeholders_where_its_placements_allow(
    example_token_everywhere, upstream, api, canary, responses
):
    status, body = await api("POST", "request", body={
        "method": "POST", "url": f"{upstream.url}/echo/x",
        "headers": {"Authorization": "Bearer {{secrets.EXAMPLE_TOKEN}}"},
        "params": {"key": "{{ secrets.EXAMPLE_TOKEN }}"},
        "json": {"token": "{{secrets.EXAMPLE_TOKEN}}"}})
    assert status == 200, body
    (seen,) = upstream.requests
    assert seen.headers["Authorization"] == f"Bearer {canary}"
    assert seen.json() == {"token": canary}
    assert canary in seen.query
    assert "[REDACTED:EXAMPLE_TOKEN]" in json.dumps(body)
    assert_no_canary(canary, *responses)


@pytest.mark.parametrize(("url", "words"), [
    ("http://localhost:{port}/echo/x", "may not be sent to localhost"),
    ("http://127.0.0.1:1/echo/x", "may not be sent to 127.0.0.1"),
    ("https://evil.example/?k={{{{secrets.EXAMPLE_TOKEN}}}}", "may not be sent to evil.example"),
])
async def test_disallowed_hosts_are_refused_before_any_byte_leaves(
    example_token, upstream, api, url, words
):
    status, body = await api("POST", "request", body={
        "url": url.format(port=upstream.port),
        "headers": {"Authorization": "Bearer {{secrets.EXAMPLE_TOKEN}}"}})
    assert status == 403
    assert words in body["message"]
    assert upstream.requests == []


async def test_unknown_placeholder_and_no_placeholder_are_refused(example_token, upstream, api):
    status, body = await api("POST", "request", body={
        "url": f"{upstream.url}/echo", "headers": {"X": "{{secrets.NOPE}}"}})
    assert status == 422 and "NOPE" in body["message"]
    status, body = await api("POST", "request", body={"url": f"{upstream.url}/echo"})
    assert status == 422 and "placeholder" in body["message"]
    assert upstream.requests == []


async def test_redirect_to_another_host_is_not_followed(example_token, upstream, api):
    target = f"http://localhost:{upstream.port}/echo/stolen"
    status, body = await api("POST", "request", body={
        "url": f"{upstream.url}/redirect?to={target}",
        "headers": {"x-api-key": "{{secrets.EXAMPLE_TOKEN}}"}})
    assert status == 403
    assert "redirected" in body["message"] and "localhost" in body["message"]
    assert [r.path for r in upstream.requests] == ["/redirect"]


async def test_redirect_within_the_allowed_host_is_followed(example_token, upstream, api, canary):
    status, _ = await api("POST", "request", body={
        "url": f"{upstream.url}/redirect?to=/echo/landed",
        "headers": {"x-api-key": "{{secrets.EXAMPLE_TOKEN}}"}})
    assert status == 200
    assert [r.path for r in upstream.requests] == ["/redirect", "/echo/landed"]
    assert upstream.requests[1].headers["x-api-key"] == canary


async def test_values_with_line_breaks_never_go_into_headers(api, upstream):
    evil = "line1\r\nX-Injected: yes"
    await api("POST", "secrets", body={"name": "MULTI", "value": evil,
                                       "allowed_hosts": [f"127.0.0.1:{upstream.port}"],
                                       "placements": ["header", "body"]})
    status, body = await api("POST", "request", body={
        "url": f"{upstream.url}/echo", "headers": {"X-Key": "{{secrets.MULTI}}"}})
    assert status == 403
    assert "line break" in body["message"] and "MULTI" in body["message"]
    assert "line1" not in body["message"]
    assert upstream.requests == []
    status, _ = await api("POST", "request", body={
        "method": "POST", "url": f"{upstream.url}/echo", "body": "{{secrets.MULTI}}"})
    assert status == 200, "in a body a line break is just data"


async def test_metadata_addresses_are_refused_unless_listed_exactly(
    api, upstream, monkeypatch, canary
):
    """DNS is simulated (no resolver here maps a name to 169.254.169.254); the check is real."""
    from ipaddress import ip_address

    from jupyter_secrets.egress import transport

    async def fake_resolve(host: str, port: int):
        return [ip_address("169.254.169.254")] if host == "metadata.test" else \
            [ip_address("127.0.0.1")]

    monkeypatch.setattr(transport, "resolve_pinned", fake_resolve)
    await api("POST", "secrets", body={"name": "CLOUD", "value": canary,
                                       "allowed_hosts": ["*.test"]})
    status, body = await api("POST", "request", body={
        "url": "http://metadata.test/latest", "headers": {"X": "{{secrets.CLOUD}}"}})
    assert status == 403 and "metadata" in body["message"]


async def test_connections_are_pinned_to_the_checked_address(api, upstream, monkeypatch, canary):
    """The name resolves (once, in our resolver) to the upstream; the socket goes there."""
    from ipaddress import ip_address

    from jupyter_secrets.egress import transport

    resolved: list[str] = []

    async def resolver(host: str, port: int):
        resolved.append(host)
        return [ip_address("127.0.0.1")]

    monkeypatch.setattr(transport, "resolve_pinned", resolver)
    await api("POST", "secrets", body={"name": "PINNED", "value": canary,
                                       "allowed_hosts": ["api.pinned.test:*".replace(":*", "")]})
    status, body = await api("POST", "request", body={
        "url": f"http://api.pinned.test:{upstream.port}/echo/p",
        "headers": {"X": "{{secrets.PINNED}}"}})
    assert status == 200, body
    assert resolved == ["api.pinned.test"]
    assert upstream.requests[0].headers["Host"] == f"api.pinned.test:{upstream.port}"


async def test_a_caller_who_hangs_up_cancels_the_upstream_call(up_connection, upstream, server_url,
                                                                auth):
    def hang_up_early() -> None:
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"{server_url}/proxy/up/slow", params={"delay": "5"}, headers=auth,
                      timeout=httpx.Timeout(5, read=0.5))

    await asyncio.to_thread(hang_up_early)
    for _ in range(40):
        if upstream.hung_up:
            break
        await asyncio.sleep(0.1)
    assert upstream.hung_up == ["/slow"], "the proxy closed its upstream connection at once"


async def test_each_use_is_counted_off_the_hot_path(up_connection, api, server_url, auth):
    for _ in range(3):
        assert (await http("GET", f"{server_url}/proxy/up/status/200", headers=auth)
                ).status_code == 200
    for _ in range(40):  # written in the background at most once a second
        _, secret = await api("GET", "secrets", "UP_CONNECTION_KEY")
        if secret["use_count"]:
            break
        await asyncio.sleep(0.1)
    assert secret["use_count"] == 3 and secret["last_used_at"]


async def test_placeholders_cannot_be_part_of_the_host(runtime, api, settings, upstream, canary):
    runtime.secrets.create("admin", "SUB", canary, allowed_hosts=["*.example.com"])
    status, body = await api("POST", "request", body={
        "url": "https://{{secrets.SUB}}.example.com/", "headers": {"X": "y"}})
    assert status == 403 and "cannot be part of the host" in body["message"]
