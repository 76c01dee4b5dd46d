"""Only bytes the server can decode, and so scrub, are relayed.

The proxy asks upstreams only for encodings it decodes (on both egress routes, whatever the
caller asked for) and answers 502 when an answer arrives in another encoding or still
compressed inside its declared one: a compressed echo would otherwise pass the scrubber.
"""

from __future__ import annotations

import pytest

from jupyter_secrets.egress.outbound import ACCEPT_ENCODING

from .helpers import assert_no_canary, http

ECHO_AUTH = {"Authorization": "Bearer {{secrets.EXAMPLE_TOKEN}}"}


async def test_only_decodable_encodings_are_asked_for_on_both_routes(
    api, up_connection, example_token, upstream, server_url, auth
):
    await api("POST", "request", body={"url": f"{upstream.url}/echo/a", "headers": {
        **ECHO_AUTH, "Accept-Encoding": "br, zstd, x-gzip"}})
    await http("GET", f"{server_url}/proxy/up/echo/b",
               headers={**auth, "Accept-Encoding": "br"})
    for seen in upstream.requests:
        assert seen.headers.get_list("Accept-Encoding") == [ACCEPT_ENCODING]
    assert set(ACCEPT_ENCODING.split(", ")) == {"gzip", "deflate"}


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_declared_decodable_encodings_are_decoded_and_scrubbed(
    api, example_token, upstream, coding, canary, responses
):
    status, body = await api("POST", "request", body={
        "url": f"{upstream.url}/encoded", "params": {"coding": coding}, "headers": ECHO_AUTH})
    assert status == 200
    assert body["headers"]["Authorization"] == "Bearer [REDACTED:EXAMPLE_TOKEN]"
    assert_no_canary(canary, *responses)


@pytest.mark.parametrize(("coding", "layers", "words"), [
    ("br", 1, "cannot decode (br)"),
    ("x-gzip", 1, "cannot decode (x-gzip)"),
    ("zstd", 1, "cannot decode (zstd)"),
    ("gzip", 2, "compressed body inside its declared encoding"),
    ("deflate", 2, "compressed body inside its declared encoding"),
])
async def test_undecodable_answers_are_a_502_and_relay_nothing(
    api, up_connection, example_token, upstream, server_url, auth, coding, layers, words,
    canary, responses
):
    status, body = await api("POST", "request", body={
        "url": f"{upstream.url}/encoded", "headers": ECHO_AUTH,
        "params": {"coding": coding, "layers": str(layers)}})
    assert status == 502, body
    assert words in body["message"] and "nothing was relayed" in body["message"]
    r = await http("GET", f"{server_url}/proxy/up/encoded",
                   params={"coding": coding, "layers": layers}, headers=auth)
    assert r.status_code == 502 and r.headers["X-Jupyter-Secrets-Error"] == "1"
    assert_no_canary(canary, r.content, *responses)
