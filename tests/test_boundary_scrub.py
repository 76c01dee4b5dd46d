"""Spec of the response scrubber: what is redacted, and how the stream holds back bytes.

The proxy builds a ``Scrubber`` from the values it injected and passes every response
header and body chunk through it, so an upstream echo never carries a value back.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
from urllib.parse import quote, quote_plus

import pytest

from jupyter_secrets.boundary.scrub import Scrubber, ScrubStream, redaction_marker

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


def held_suffix(stream: ScrubStream, fed: bytes) -> bytes:
    """The bytes a stream is retaining: always a suffix of what was fed so far."""
    return fed[len(fed) - stream.held_back :]


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
        assert scrubber.max_hold_back == 0

    def test_empty_mapping_is_a_passthrough(self) -> None:
        scrubber = Scrubber({})
        assert scrubber.scrub_bytes(b"sk-anything") == b"sk-anything"
        assert scrubber.scrub_text("text") == "text"
        assert scrubber.scrub_headers([("A", "b")]) == [("A", "b")]
        assert scrubber.max_hold_back == 0
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


class TestStream:
    VALUE = "sk-live-abc123xyz"

    def scrubber(self) -> Scrubber:
        return Scrubber({"K": self.VALUE})

    def test_value_split_at_every_position_is_caught(self) -> None:
        body = b"data: " + self.VALUE.encode() + b"\n\n"
        for cut in range(len(body) + 1):
            stream = self.scrubber().stream()
            out = stream.feed(body[:cut]) + stream.feed(body[cut:]) + stream.finish()
            assert out == b"data: [REDACTED:K]\n\n", cut

    def test_byte_at_a_time(self) -> None:
        body = f"x {self.VALUE} y {self.VALUE}".encode()
        stream = self.scrubber().stream()
        out = b"".join(stream.feed(body[i : i + 1]) for i in range(len(body)))
        assert out + stream.finish() == b"x [REDACTED:K] y [REDACTED:K]"

    def test_chunk_that_cannot_start_a_value_passes_through_at_once(self) -> None:
        """An SSE event ends in blank lines, which no pattern starts with: nothing waits."""
        stream = self.scrubber().stream()
        event = b'data: {"content": "Hello sk and c2s"}\n\n'
        assert stream.feed(event) == event
        assert stream.held_back == 0

    def test_only_a_possible_value_prefix_is_held_back(self) -> None:
        stream = self.scrubber().stream()
        assert stream.feed(b"abc sk-li") == b"abc "
        assert stream.held_back == len(b"sk-li")
        assert stream.feed(b"mited") == b"sk-limited"
        assert stream.held_back == 0

    def test_an_incomplete_prefix_is_released_by_finish(self) -> None:
        stream = self.scrubber().stream()
        assert stream.feed(b"tail sk-live") == b"tail "
        assert stream.finish() == b"sk-live"
        assert stream.finish() == b""

    def test_feed_after_finish_is_an_error(self) -> None:
        stream = self.scrubber().stream()
        stream.finish()
        with pytest.raises(RuntimeError):
            stream.feed(b"late")

    def test_empty_mapping_streams_without_hold_back(self) -> None:
        stream = Scrubber({}).stream()
        assert stream.feed(b"sk-") == b"sk-"
        assert stream.held_back == 0
        assert stream.finish() == b""

    def test_empty_chunks_are_harmless(self) -> None:
        stream = self.scrubber().stream()
        assert stream.feed(b"") == b""
        assert stream.feed(b"sk-") == b""
        assert stream.feed(b"") == b""
        assert stream.finish() == b"sk-"

    def test_repeated_prefixes_never_exceed_the_bound(self) -> None:
        scrubber = self.scrubber()
        stream = scrubber.stream()
        fed = b""
        for _ in range(200):
            fed += b"sk-live-"
            stream.feed(b"sk-live-")
            assert stream.held_back <= scrubber.max_hold_back
            assert held_suffix(stream, fed) in {b"sk-live-", b""} or self.VALUE.encode().startswith(
                held_suffix(stream, fed)
            )


# --- property-style checks (seeded, reproducible; hypothesis is not a dependency) -------

ALPHABET = string.ascii_letters + string.digits + ' /+=-_~?&%"\\:{}é€😀'


def random_value(rng: random.Random) -> str:
    return "sk-" + "".join(rng.choice(ALPHABET) for _ in range(rng.randint(3, 40)))


def random_body(rng: random.Random, values: list[str]) -> bytes:
    """Filler mixed with values in many encodings, plus look-alike prefixes to stress
    hold-back (a prefix of a form that never completes)."""
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
        filler = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 30)))
        pieces.append(filler.encode())
    return b"".join(pieces)


def random_chunks(rng: random.Random, body: bytes) -> list[bytes]:
    chunks, pos = [], 0
    while pos < len(body):
        size = rng.choice([1, 2, 3, rng.randint(1, 16), rng.randint(1, 200)])
        chunks.append(body[pos : pos + size])
        pos += size
    return chunks


@pytest.mark.parametrize("seed", range(150))
def test_streaming_equals_one_shot_and_leaks_nothing(seed: int) -> None:
    rng = random.Random(seed)
    values = [random_value(rng) for _ in range(rng.randint(1, 3))]
    names = [f"S{i}" for i in range(len(values))]
    scrubber = Scrubber(dict(zip(names, values, strict=True)))
    patterns = patterns_of(scrubber)
    body = random_body(rng, values)
    one_shot = scrubber.scrub_bytes(body)

    for value in values:
        for form in encoded_forms(value).values():
            assert form not in one_shot

    for _ in range(5):
        stream = scrubber.stream()
        fed, emitted = b"", b""
        for chunk in random_chunks(rng, body):
            fed += chunk
            emitted += stream.feed(chunk)
            # Bounded: never more than the longest pattern minus one byte...
            assert stream.held_back <= scrubber.max_hold_back
            held = held_suffix(stream, fed)
            # ...and only a suffix that could still become a value...
            assert not held or any(len(p) > len(held) and p.startswith(held) for p in patterns)
            # ...while everything before it has been emitted, already scrubbed.
            assert emitted == scrubber.scrub_bytes(fed[: len(fed) - len(held)])
        assert emitted + stream.finish() == one_shot


@pytest.mark.parametrize("seed", range(50))
def test_text_without_value_prefixes_is_never_held(seed: int) -> None:
    """Chunks that end in bytes no pattern starts with come out whole, immediately."""
    rng = random.Random(seed)
    scrubber = Scrubber({"K": random_value(rng)})
    starters = {p[:1] for p in patterns_of(scrubber)}
    safe = [c for c in string.printable if c.encode() not in starters]
    stream = scrubber.stream()
    for _ in range(20):
        chunk = "".join(rng.choice(safe) for _ in range(rng.randint(1, 50))).encode()
        assert stream.feed(chunk) == chunk
        assert stream.held_back == 0
