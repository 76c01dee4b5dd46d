"""Spec of the response scrubber: what is redacted, and how the stream holds back bytes.

The proxy builds a ``Scrubber`` from the values it injected and passes every response
header and body chunk through it, so an upstream echo never carries a value back.
"""

from __future__ import annotations

import base64
import json
import pickle
import random
import re
import string
from urllib.parse import quote, quote_plus

import pytest

from jupyter_secrets.boundary.scrub import (
    MAX_RECORD,
    MIN_WINDOW,
    Scrubber,
    ScrubStream,
    redaction_marker,
    stream_rule,
)

VALUE = 'sk-Live/Key+42 ~ü"\\?&='
MARKER = b"[REDACTED:API_KEY]"


def encoded_forms(value: str) -> dict[str, bytes]:
    """The forms an upstream is likely to echo, computed independently of the module."""
    raw = value.encode()
    b64 = base64.b64encode(raw)
    b64_url = base64.urlsafe_b64encode(raw)
    return {
        "raw": raw,
        "json": json.dumps(value)[1:-1].encode(),
        "json_unicode": json.dumps(value, ensure_ascii=False)[1:-1].encode(),
        "json_escaped_slash": json.dumps(value)[1:-1].replace("/", "\\/").encode(),
        "quote": quote(value, safe="").encode(),
        "quote_keep_slash": quote(value).encode(),
        "quote_plus": quote_plus(value).encode(),
        "quote_lower_hex": re.sub(
            "%[0-9A-F]{2}", lambda m: m.group().lower(), quote(value, safe="")
        ).encode(),
        "base64": b64,
        "base64_unpadded": b64.rstrip(b"="),
        "base64_urlsafe": b64_url,
        "base64_urlsafe_unpadded": b64_url.rstrip(b"="),
    }


def patterns_of(scrubber: Scrubber) -> list[bytes]:
    # Test-only peek: there is deliberately no public way to list the patterns (they are
    # the values).
    return list(scrubber._replacements)


class TestOneShot:
    def test_the_example_value_exercises_distinct_forms(self) -> None:
        forms = encoded_forms(VALUE)
        assert len(set(forms.values())) == len(forms)

    @pytest.mark.parametrize("form", sorted(encoded_forms(VALUE)))
    def test_every_encoded_form_is_redacted(self, form: str) -> None:
        scrubber = Scrubber({"API_KEY": VALUE})
        encoded = encoded_forms(VALUE)[form]
        assert scrubber.scrub_bytes(b"before " + encoded + b" after") == (
            b"before " + MARKER + b" after"
        )

    def test_json_echo_of_a_request_is_clean(self) -> None:
        scrubber = Scrubber({"API_KEY": VALUE})
        echo = json.dumps({"headers": {"Authorization": f"Bearer {VALUE}"}, "body": VALUE})
        out = scrubber.scrub_text(echo)
        assert json.loads(out) == {
            "headers": {"Authorization": "Bearer [REDACTED:API_KEY]"},
            "body": "[REDACTED:API_KEY]",
        }

    def test_all_occurrences_of_all_names(self) -> None:
        scrubber = Scrubber({"A": "alpha-secret", "B": "bravo-secret"})
        body = b"alpha-secret bravo-secret alpha-secret"
        assert scrubber.scrub_bytes(body) == b"[REDACTED:A] [REDACTED:B] [REDACTED:A]"

    def test_longest_match_wins_when_one_value_contains_another(self) -> None:
        scrubber = Scrubber({"SHORT": "secret", "LONG": "secret-extended"})
        assert scrubber.scrub_bytes(b"secret-extended secret") == (
            b"[REDACTED:LONG] [REDACTED:SHORT]"
        )

    def test_same_value_under_two_names_is_attributed_deterministically(self) -> None:
        first = Scrubber({"ZED": "shared-value", "ALPHA": "shared-value"})
        second = Scrubber({"ALPHA": "shared-value", "ZED": "shared-value"})
        assert first.scrub_bytes(b"shared-value") == b"[REDACTED:ALPHA]"
        assert second.scrub_bytes(b"shared-value") == b"[REDACTED:ALPHA]"

    def test_short_raw_value_is_still_scrubbed_but_short_encodings_are_not(self) -> None:
        scrubber = Scrubber({"PIN": "ab"})
        assert scrubber.scrub_bytes(b"xaby") == b"x[REDACTED:PIN]y"
        # base64("ab") unpadded is "YWI": three characters would hit ordinary text.
        assert scrubber.scrub_bytes(b"YWIx") == b"YWIx"
        # ...but the padded form has four and is scrubbed.
        assert scrubber.scrub_bytes(b"YWI=") == b"[REDACTED:PIN]"

    def test_empty_values_are_ignored(self) -> None:
        scrubber = Scrubber({"EMPTY": ""})
        assert scrubber.scrub_bytes(b"anything") == b"anything"
        assert scrubber.max_pattern_length == 0

    def test_empty_mapping_is_a_passthrough(self) -> None:
        scrubber = Scrubber({})
        assert scrubber.scrub_bytes(b"sk-anything") == b"sk-anything"
        assert scrubber.scrub_text("text") == "text"
        assert scrubber.scrub_headers([("A", "b")]) == [("A", "b")]
        assert scrubber.max_pattern_length == 0
        assert scrubber.names == ()

    def test_replacement_text_is_not_rescanned(self) -> None:
        scrubber = Scrubber({"REDACTED": "REDACTED"})
        assert scrubber.scrub_bytes(b"REDACTED") == b"[REDACTED:REDACTED]"

    def test_scrub_text_keeps_unicode_and_lone_surrogates(self) -> None:
        scrubber = Scrubber({"K": "clé-secrète"})
        assert scrubber.scrub_text("→ clé-secrète ←") == "→ [REDACTED:K] ←"
        assert scrubber.scrub_text("\ud800 clé-secrète") == "\ud800 [REDACTED:K]"

    def test_binary_bodies_are_scrubbed_byte_for_byte(self) -> None:
        scrubber = Scrubber({"K": "secret-value"})
        body = bytes(range(256)) + b"secret-value" + bytes(range(256))
        assert scrubber.scrub_bytes(body) == bytes(range(256)) + b"[REDACTED:K]" + bytes(range(256))

    def test_marker(self) -> None:
        assert redaction_marker("API_KEY") == "[REDACTED:API_KEY]"


class TestHeaders:
    def test_values_are_scrubbed_and_names_kept(self) -> None:
        scrubber = Scrubber({"API_KEY": VALUE})
        headers = [("X-Echo", f"Bearer {VALUE}"), ("Location", f"/x?k={quote(VALUE)}")]
        assert scrubber.scrub_headers(headers) == [
            ("X-Echo", "Bearer [REDACTED:API_KEY]"),
            ("Location", "/x?k=[REDACTED:API_KEY]"),
        ]

    def test_latin1_decoded_utf8_value_is_scrubbed(self) -> None:
        """Clients may decode header bytes as Latin-1: a UTF-8 value turns to mojibake."""
        value = "pässwörd-1234"
        mojibake = value.encode().decode("latin-1")
        scrubber = Scrubber({"PW": value})
        assert scrubber.scrub_headers([("X-Echo", mojibake)]) == [("X-Echo", "[REDACTED:PW]")]

    def test_repeated_headers_are_all_scrubbed(self) -> None:
        scrubber = Scrubber({"K": "secret-value"})
        headers = [("Set-Cookie", "a=secret-value"), ("Set-Cookie", "b=1")]
        assert scrubber.scrub_headers(headers) == [
            ("Set-Cookie", "a=[REDACTED:K]"),
            ("Set-Cookie", "b=1"),
        ]


class TestBase64Embedding:
    def test_basic_auth_echo_via_extra_patterns(self) -> None:
        value = "hunter2-token"
        scrubber = Scrubber({"PW": value}, extra_patterns={"PW": [f"alice:{value}"]})
        echoed = "Basic " + base64.b64encode(f"alice:{value}".encode()).decode()
        assert scrubber.scrub_text(echoed) == "Basic [REDACTED:PW]"

    def test_extra_patterns_may_introduce_a_name(self) -> None:
        scrubber = Scrubber({}, extra_patterns={"PAIR": ["user:pass-word"]})
        assert scrubber.names == ("PAIR",)
        assert scrubber.scrub_bytes(b"user:pass-word") == b"[REDACTED:PAIR]"

    @pytest.mark.parametrize("prefix", [b"", b"u", b"us", b"use", b"user:"])
    def test_value_inside_longer_base64_keeps_only_mixed_edge_characters(
        self, prefix: bytes
    ) -> None:
        """Without extra patterns only the offset-independent middle can be matched.

        Every base64 character that survives mixes in bits of the surrounding bytes (at most
        one character per edge carries any bits of the value), so the value cannot be decoded
        back.
        """
        value = b"sk-embedded-0123456789"
        payload = base64.b64encode(prefix + value + b"!tail")
        out = Scrubber({"K": value.decode()}).scrub_bytes(payload)
        before, after = out.split(b"[REDACTED:K]")
        first_value_only_char = -(-8 * len(prefix) // 6)
        end_of_value_only_chars = 8 * (len(prefix) + len(value)) // 6
        assert before == payload[:first_value_only_char]
        assert after == payload[end_of_value_only_chars:]

    def test_unrelated_base64_is_untouched(self) -> None:
        rng = random.Random(7)
        blob = base64.b64encode(bytes(rng.randrange(256) for _ in range(50_000)))
        scrubber = Scrubber({"K": "sk-not-in-the-blob-1234"})
        assert scrubber.scrub_bytes(blob) == blob


class TestRepr:
    def test_repr_shows_names_never_values(self) -> None:
        scrubber = Scrubber({"API_KEY": VALUE}, extra_patterns={"API_KEY": [f"u:{VALUE}"]})
        stream = scrubber.stream()
        stream.feed(b"partial " + VALUE.encode()[:6])
        for text in (repr(scrubber), str(scrubber), repr(stream), str(stream)):
            assert "API_KEY" in text
            assert "sk-" not in text
            for form in encoded_forms(VALUE).values():
                assert form.decode("utf-8", "replace") not in text


class TestPickling:
    def test_scrubbers_and_their_matchers_refuse_to_be_pickled(self) -> None:
        scrubber = Scrubber({"API_KEY": VALUE})
        for obj in (scrubber, scrubber._matcher):
            with pytest.raises(TypeError, match="cannot be pickled"):
                pickle.dumps(obj)


def feed_all(stream: ScrubStream, chunks: list[bytes]) -> list[bytes]:
    """What each ``feed()`` released, chunk by chunk."""
    return [stream.feed(chunk) for chunk in chunks]


class TestRules:
    @pytest.mark.parametrize(("content_type", "rule"), [
        ("text/event-stream", "event"),
        ("Text/Event-Stream; charset=utf-8", "event"),
        ("application/x-ndjson", "line"),
        ("application/jsonl", "line"),
        ("application/json-seq", "line"),
        ("application/json", "window"),
        ("text/plain; charset=utf-8", "window"),
        ("application/octet-stream", "window"),
        ("", "window"),
        (None, "window"),
    ])
    def test_the_content_type_picks_the_rule(self, content_type: str | None, rule: str) -> None:
        assert stream_rule(content_type) == rule
        assert Scrubber({"K": "secret-value"}).stream(content_type).rule == rule

    def test_without_values_every_byte_passes_at_once(self) -> None:
        stream = Scrubber({}).stream("text/plain")
        assert stream.rule == "none"
        assert stream.feed(b"sk-") == b"sk-"
        assert stream.held_back == 0
        assert not stream.idle_flushable
        assert stream.finish() == b""

    def test_window_is_a_power_of_two_no_shorter_than_the_longest_pattern(self) -> None:
        assert Scrubber({"K": "secret-value"}).window == MIN_WINDOW
        long_value = "x" * 5000
        scrubber = Scrubber({"K": long_value})
        assert scrubber.max_pattern_length > 5000
        assert scrubber.window == 8192
        assert Scrubber({}).window == 0


class TestEventStream:
    VALUE = "sk-live-abc123xyz"

    def stream(self) -> ScrubStream:
        return Scrubber({"K": self.VALUE}).stream("text/event-stream")

    @pytest.mark.parametrize("end", [b"\n\n", b"\r\n\r\n", b"\r\r", b"\r\n\n", b"\n\r\n"])
    def test_an_event_is_released_whole_when_its_blank_line_arrives(self, end: bytes) -> None:
        stream = self.stream()
        assert stream.feed(b"event: delta\n") == b""
        assert stream.feed(b'data: {"text": "hi"}') == b""
        assert stream.feed(end) == b'event: delta\ndata: {"text": "hi"}' + end
        assert stream.held_back == 0

    def test_a_single_line_ending_is_not_the_end_of_an_event(self) -> None:
        stream = self.stream()
        assert stream.feed(b"data: a\r\n") == b""
        assert stream.feed(b"data: b\n") == b""
        assert stream.feed(b"\n") == b"data: a\r\ndata: b\n\n"

    def test_a_boundary_split_across_chunks_is_found(self) -> None:
        stream = self.stream()
        assert stream.feed(b"data: a\r") == b""
        assert stream.feed(b"\n\r") == b"data: a\r\n\r"
        assert stream.feed(b"\ndata: b\n\n") == b"\ndata: b\n\n"

    def test_complete_events_leave_together_and_the_partial_one_waits(self) -> None:
        stream = self.stream()
        out = stream.feed(b"data: 1\n\ndata: 2\n\ndata: 3")
        assert out == b"data: 1\n\ndata: 2\n\n"
        assert stream.held_back == len(b"data: 3")
        assert not stream.idle_flushable, "a partial event is never released by a timer"
        assert stream.flush() == b""
        assert stream.finish() == b"data: 3"

    def test_value_split_at_every_position_is_caught(self) -> None:
        body = b"data: " + self.VALUE.encode() + b"\n\n"
        for cut in range(len(body) + 1):
            stream = self.stream()
            out = stream.feed(body[:cut]) + stream.feed(body[cut:]) + stream.finish()
            assert out == b"data: [REDACTED:K]\n\n", cut

    def test_an_oversized_event_falls_back_to_the_window(self) -> None:
        stream = self.stream()
        big = b"data: " + b"x" * MAX_RECORD
        out = stream.feed(big)
        assert out == big[: len(big) - MIN_WINDOW]
        assert stream.idle_flushable
        assert stream.flush() == big[len(big) - MIN_WINDOW:]
        assert stream.feed(b"y\n\ndata: next") == b"y\n\n"
        assert not stream.idle_flushable


class TestLineStream:
    def test_complete_lines_are_released(self) -> None:
        stream = Scrubber({"K": "sk-live-abc123xyz"}).stream("application/x-ndjson")
        assert stream.feed(b'{"a": 1}\n{"b": "sk-live') == b'{"a": 1}\n'
        assert stream.feed(b'-abc123xyz"}\n{"c"') == b'{"b": "[REDACTED:K]"}\n'
        assert stream.finish() == b'{"c"'


class TestWindowStream:
    VALUE = "sk-live-abc123xyz"

    def scrubber(self) -> Scrubber:
        return Scrubber({"K": self.VALUE})

    def test_the_last_window_of_bytes_is_held_whatever_it_holds(self) -> None:
        stream = self.scrubber().stream("text/plain")
        assert stream.feed(b"a" * 100) == b""
        assert stream.held_back == 100
        assert stream.idle_flushable
        assert stream.feed(b"b" * MIN_WINDOW) == b"a" * 100
        assert stream.held_back == MIN_WINDOW

    def test_an_idle_flush_releases_everything_held(self) -> None:
        stream = self.scrubber().stream("text/plain")
        assert stream.feed(b"hello sk-live-") == b""
        assert stream.flush() == b"hello sk-live-"
        assert stream.held_back == 0 and not stream.idle_flushable
        assert stream.flush() == b""

    def test_a_value_cut_by_an_idle_flush_is_redacted_after_the_cut(self) -> None:
        """Documented limit: the part released before the cut has passed; the rest not."""
        stream = self.scrubber().stream("text/plain")
        stream.feed(b"key: sk-live-")
        assert stream.flush() == b"key: sk-live-"
        stream.feed(b"abc123xyz and more")
        assert stream.finish() == b"[REDACTED:K] and more"

    def test_a_value_straddling_the_window_edge_is_released_whole(self) -> None:
        stream = self.scrubber().stream("text/plain")
        body = b"x" * 10 + self.VALUE.encode() + b"y" * MIN_WINDOW
        out = stream.feed(body)
        assert out == b"x" * 10 + b"[REDACTED:K]"
        assert stream.held_back == MIN_WINDOW
        assert stream.finish() == b"y" * MIN_WINDOW

    def test_feed_after_finish_is_an_error_and_empty_chunks_are_harmless(self) -> None:
        stream = self.scrubber().stream("text/plain")
        assert stream.feed(b"") == b""
        assert stream.feed(b"sk-") == b""
        assert stream.finish() == b"sk-"
        assert stream.finish() == b""
        with pytest.raises(RuntimeError):
            stream.feed(b"late")


# --- property-style checks (seeded, reproducible) -------------------------------------------

ALPHABET = string.ascii_letters + string.digits + ' /+=-_~?&%"\\:{}é€😀'
CONTENT_TYPES = ("text/event-stream", "application/x-ndjson", "text/plain")


def random_value(rng: random.Random) -> str:
    return "sk-" + "".join(rng.choice(ALPHABET) for _ in range(rng.randint(3, 40)))


def filler(rng: random.Random, size: int) -> bytes:
    return "".join(rng.choice(ALPHABET) for _ in range(size)).encode()


def random_body(rng: random.Random, values: list[str], framing: bytes) -> bytes:
    """Filler mixed with values in many encodings, look-alike prefixes, and framing bytes
    (event or line ends) between pieces, never inside one."""
    pieces: list[bytes] = []
    for _ in range(rng.randint(1, 12)):
        value = rng.choice(values)
        form = rng.choice(list(encoded_forms(value).values()))
        kind = rng.random()
        if kind < 0.5:
            pieces.append(form)
        elif kind < 0.7:
            pieces.append(form[: rng.randint(1, len(form) - 1)])
        else:
            user = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(0, 5)))
            pieces.append(base64.b64encode(f"{user}:{value}".encode()))
        pieces.append(filler(rng, rng.randint(0, 30)))
        if rng.random() < 0.4:
            pieces.append(framing)
    return b"".join(pieces)


def random_chunks(rng: random.Random, body: bytes) -> list[bytes]:
    chunks, pos = [], 0
    while pos < len(body):
        size = rng.choice([1, 2, 3, rng.randint(1, 16), rng.randint(1, 200), 5000])
        chunks.append(body[pos : pos + size])
        pos += size
    return chunks


FRAMING = {"text/event-stream": b"\n\n", "application/x-ndjson": b"\n", "text/plain": b"\n\n"}


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
@pytest.mark.parametrize("seed", range(60))
def test_streaming_equals_one_shot_and_leaks_nothing(seed: int, content_type: str) -> None:
    rng = random.Random(seed)
    values = [random_value(rng) for _ in range(rng.randint(1, 3))]
    names = [f"S{i}" for i in range(len(values))]
    scrubber = Scrubber(dict(zip(names, values, strict=True)))
    body = random_body(rng, values, FRAMING[content_type])
    if rng.random() < 0.3:  # long enough for the window to release before the end
        body = filler(rng, 3000) + body + filler(rng, 6000) + body
    one_shot = scrubber.scrub_bytes(body)
    for value in values:
        for form in encoded_forms(value).values():
            assert form not in one_shot

    for _ in range(3):
        stream = scrubber.stream(content_type)
        emitted = b"".join(feed_all(stream, random_chunks(rng, body)))
        assert emitted + stream.finish() == one_shot


def mutate_last(data: bytes) -> bytes:
    """Same length, last byte changed: no longer a prefix of the value."""
    return data[:-1] + (b"#" if data[-1:] != b"#" else b"!")


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
@pytest.mark.parametrize("seed", range(40))
def test_what_is_released_when_never_depends_on_the_values(seed: int, content_type: str) -> None:
    """A right prefix of a value and a wrong one of the same length: the same bytes leave at
    the same feeds, idle flushes included, whatever the chunking (issue 8.2)."""
    rng = random.Random(seed)
    value = random_value(rng)
    scrubber = Scrubber({"K": value})
    form = rng.choice(list(encoded_forms(value).values()))
    prefix = form[: rng.randint(1, len(form) - 1)]
    while scrubber.scrub_bytes(prefix) != prefix:  # holds a whole (shorter) form: shorten
        prefix = prefix[:-1]
    framing = FRAMING[content_type]
    parts = [filler(rng, rng.randint(0, 5000)), prefix, framing if rng.random() < 0.5 else b""]
    right = b"".join(parts) + filler(rng, rng.randint(0, 50))
    wrong = right.replace(prefix, mutate_last(prefix), 1)
    assert len(right) == len(wrong) and right != wrong
    chunks_at = []
    pos = 0
    while pos < len(right):
        size = rng.choice([1, 7, 100, 3000])
        chunks_at.append((pos, pos + size))
        pos += size
    flush_after = {i for i in range(len(chunks_at)) if rng.random() < 0.2}

    def releases(body: bytes) -> list[int]:
        stream = scrubber.stream(content_type)
        sizes = []
        for i, (start, end) in enumerate(chunks_at):
            sizes.append(len(stream.feed(body[start:end])))
            if i in flush_after:
                sizes.append(len(stream.flush()))
        sizes.append(len(stream.finish()))
        return sizes

    assert releases(right) == releases(wrong)
