"""The test upstream speaks well enough for the real SDKs, with no proxy in between.

If these pass, a failing proxy test points at the proxy, not at the fake upstream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

try:
    from tests.upstream import CONTENT, CONTENT_PIECES, Upstream, iter_upstream
except ModuleNotFoundError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from upstream import (  # type: ignore[no-redef]
        CONTENT,
        CONTENT_PIECES,
        Upstream,
        iter_upstream,
    )

API_KEY = "sk-fixture-key-abcdef0123456789"
MESSAGES = [{"role": "user", "content": "Say hello"}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    yield from iter_upstream(api_key=API_KEY, stream_delay=0.0)


def _openai(upstream: Upstream, api_key: str = API_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{upstream.url}/v1", api_key=api_key, max_retries=0)


def _anthropic(upstream: Upstream, api_key: str = API_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=upstream.url, api_key=api_key, max_retries=0)


class TestOpenAI:
    def test_completion(self, upstream: Upstream) -> None:
        with _openai(upstream) as client:
            completion = client.chat.completions.create(model="gpt-test", messages=MESSAGES)
        assert completion.choices[0].message.content == CONTENT
        assert completion.model == "gpt-test"
        sent = upstream.requests[-1]
        assert sent.headers["Authorization"] == f"Bearer {API_KEY}"
        assert sent.json()["messages"] == MESSAGES

    def test_stream_yields_each_piece(self, upstream: Upstream) -> None:
        with _openai(upstream) as client:
            stream = client.chat.completions.create(
                model="gpt-test", messages=MESSAGES, stream=True
            )
            chunks = list(stream)
        pieces = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
        assert pieces == list(CONTENT_PIECES)
        assert len(chunks) == 5
        assert chunks[-1].choices[0].finish_reason == "stop"

    def test_async_stream(self, upstream: Upstream) -> None:
        async def collect() -> str:
            async with openai.AsyncOpenAI(
                base_url=f"{upstream.url}/v1", api_key=API_KEY, max_retries=0
            ) as client:
                stream = await client.chat.completions.create(
                    model="gpt-test", messages=MESSAGES, stream=True
                )
                return "".join([c.choices[0].delta.content or "" async for c in stream])

        assert asyncio.run(collect()) == CONTENT

    def test_wrong_key_is_401(self, upstream: Upstream) -> None:
        with (
            _openai(upstream, api_key="sk-wrong") as client,
            pytest.raises(openai.AuthenticationError),
        ):
            client.chat.completions.create(model="gpt-test", messages=MESSAGES)


class TestAnthropic:
    def test_message(self, upstream: Upstream) -> None:
        with _anthropic(upstream) as client:
            message = client.messages.create(model="claude-test", max_tokens=16, messages=MESSAGES)
        assert message.content[0].type == "text"
        assert message.content[0].text == CONTENT
        assert message.stop_reason == "end_turn"
        sent = upstream.requests[-1]
        # anthropic 2.x sends the key as a Bearer token, not in x-api-key: a proxy preset
        # for Anthropic must expect the caller's credential in either header.
        assert sent.headers["Authorization"] == f"Bearer {API_KEY}"
        assert sent.headers["anthropic-version"]

    def test_stream_events(self, upstream: Upstream) -> None:
        with _anthropic(upstream) as client:
            events = list(
                client.messages.create(
                    model="claude-test", max_tokens=16, messages=MESSAGES, stream=True
                )
            )
        types = [event.type for event in events]
        assert types == [
            "message_start",
            "content_block_start",
            *["content_block_delta"] * len(CONTENT_PIECES),
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]

    def test_stream_helper_accumulates_text(self, upstream: Upstream) -> None:
        with (
            _anthropic(upstream) as client,
            client.messages.stream(model="claude-test", max_tokens=16, messages=MESSAGES) as stream,
        ):
            pieces = list(stream.text_stream)
            final = stream.get_final_message()
        assert pieces == list(CONTENT_PIECES)
        assert final.content[0].text == CONTENT
        assert final.usage.output_tokens == 3

    def test_async_stream(self, upstream: Upstream) -> None:
        async def collect() -> str:
            async with (
                anthropic.AsyncAnthropic(
                    base_url=upstream.url, api_key=API_KEY, max_retries=0
                ) as client,
                client.messages.stream(
                    model="claude-test", max_tokens=16, messages=MESSAGES
                ) as stream,
            ):
                return "".join([text async for text in stream.text_stream])

        assert asyncio.run(collect()) == CONTENT

    def test_x_api_key_header_is_accepted(self, upstream: Upstream) -> None:
        headers = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
        body = {"model": "claude-test", "max_tokens": 16, "messages": MESSAGES}
        response = httpx.post(f"{upstream.url}/v1/messages", headers=headers, json=body)
        assert response.status_code == 200
        assert response.json()["content"][0]["text"] == CONTENT

    def test_missing_version_is_400(self, upstream: Upstream) -> None:
        body = {"model": "claude-test", "max_tokens": 16, "messages": MESSAGES}
        response = httpx.post(
            f"{upstream.url}/v1/messages", headers={"x-api-key": API_KEY}, json=body
        )
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_request_error"

    def test_wrong_key_is_401(self, upstream: Upstream) -> None:
        with (
            _anthropic(upstream, api_key="sk-wrong") as client,
            pytest.raises(anthropic.AuthenticationError),
        ):
            client.messages.create(model="claude-test", max_tokens=16, messages=MESSAGES)


class TestOtherEndpoints:
    def test_echo_reflects_the_request(self, upstream: Upstream) -> None:
        response = httpx.post(
            f"{upstream.url}/echo/a/b?q=1", headers={"X-Token": "t0k"}, content=b"payload"
        )
        echoed = response.json()
        assert echoed["method"] == "POST"
        assert echoed["path"] == "/echo/a/b"
        assert echoed["query"] == "q=1"
        assert echoed["headers"]["X-Token"] == "t0k"
        assert echoed["body"] == "payload"
        assert upstream.requests[-1].body == b"payload"

    def test_echo_header(self, upstream: Upstream) -> None:
        response = httpx.get(
            f"{upstream.url}/echo-header", params={"name": "X-Token"}, headers={"X-Token": "t0k"}
        )
        assert response.headers["X-Echo"] == "t0k"

    def test_redirect(self, upstream: Upstream) -> None:
        response = httpx.get(
            f"{upstream.url}/redirect", params={"to": "http://example.invalid/x", "code": "307"}
        )
        assert response.status_code == 307
        assert response.headers["Location"] == "http://example.invalid/x"

    @pytest.mark.parametrize("code", [200, 204, 404, 418, 503])
    def test_status(self, upstream: Upstream, code: int) -> None:
        response = httpx.get(f"{upstream.url}/status/{code}")
        assert response.status_code == code
        assert response.content == (b"" if code == 204 else b'{"status": %d}' % code)

    def test_slow_answers_after_the_delay(self, upstream: Upstream) -> None:
        assert httpx.get(f"{upstream.url}/slow", params={"delay": "0"}).json() == {"slept": 0.0}

    def test_stream_then_fail_breaks_mid_body(self, upstream: Upstream) -> None:
        received = b""
        with (
            pytest.raises(httpx.RemoteProtocolError),
            httpx.stream("GET", f"{upstream.url}/stream-then-fail") as response,
        ):
            assert response.status_code == 200
            for chunk in response.iter_raw():
                received += chunk
        assert received.startswith(b"chunk 0\n")

    def test_stop_is_idempotent_and_releases_the_port(self) -> None:
        for upstream in iter_upstream():
            port = upstream.port
            upstream.stop()
            upstream.stop()
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"http://127.0.0.1:{port}/status/200")
