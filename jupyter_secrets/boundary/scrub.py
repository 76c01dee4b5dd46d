"""Scrub echoes of injected secret values out of upstream responses.

An upstream may echo what it received: httpbin-style echo endpoints, error pages that quote the
request, debug headers. Whatever value the proxy injected must not travel back to the kernel,
so every response header and body byte passes through a :class:`Scrubber` that replaces each
injected value, and the usual encodings of it, with ``[REDACTED:NAME]``.

Matching works on bytes, in one pass, with a single compiled alternation of escaped literal
patterns sorted longest first, so at any position the longest pattern wins (a value that
contains another value is redacted as a whole). :meth:`Scrubber.stream` does the same across
chunk boundaries while holding back only a suffix that could still grow into a match, so a
Server-Sent Events stream is not delayed by the scrubber.

Encoded forms scrubbed for every value (forms shorter than 4 bytes are skipped, because they
would redact ordinary text; the raw value itself is always scrubbed):

* the raw UTF-8 bytes;
* JSON string escaping, as ``json.dumps`` emits it inside the quotes (ASCII-only and UTF-8),
  plus the ``\\/`` and upper-case ``\\uXXXX`` spellings other encoders use;
* URL encoding with ``quote`` and ``quote_plus`` (``/`` kept or escaped), in upper- and
  lower-case hex;
* standard and URL-safe base64 of the UTF-8 bytes, with and without ``=`` padding;
* the part of the base64 text that depends only on the value when the value sits at any of
  the three possible byte offsets inside a longer base64 payload (only when that part is at
  least 8 characters, to keep accidental hits in large base64 blobs such as images
  negligible).

Limits, stated so nobody relies on more: base64 of a value *embedded* in a longer base64
payload can only be caught through that offset-independent middle part, so up to two base64
characters at each edge (at most 4 bits of the value each) survive around the marker. To
redact such a payload completely (HTTP basic auth echoing ``base64(user:value)``), pass the
whole plaintext (``f"{user}:{value}"``) through ``extra_patterns``. Compressed bodies must be
decoded before scrubbing; other encodings (HTML entities, hex, hashes) are not scrubbed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

__all__ = ["ScrubStream", "Scrubber", "redaction_marker"]

# Encoded forms shorter than this would redact ordinary text ("abc" URL-encodes to itself,
# but a 2-byte value base64-encodes to 3 characters that show up everywhere).
_MIN_ENCODED_LENGTH = 4
# The offset-independent middle of an embedded base64 value must be long enough that a
# multi-megabyte base64 image is vanishingly unlikely to contain it by chance (64**8).
_MIN_EMBEDDED_BASE64_LENGTH = 8
# Bytes compared before a full comparison when looking for a partial match at a chunk end.
_QUICK_PREFIX = 8
_HEX_ESCAPE_RE = re.compile(r"%[0-9A-F]{2}")
_JSON_U_ESCAPE_RE = re.compile(r"\\u[0-9a-f]{4}")


def redaction_marker(name: str) -> str:
    """Return the text that replaces a value of secret ``name``: names are safe to show."""
    return f"[REDACTED:{name}]"


def _utf8(text: str) -> bytes:
    # surrogatepass: a value that arrived as JSON may hold a lone surrogate; it must still
    # be scrubbable rather than crash the response path.
    return text.encode("utf-8", "surrogatepass")


def _json_forms(plain: str) -> set[str]:
    ascii_form = json.dumps(plain)[1:-1]
    forms = {ascii_form, json.dumps(plain, ensure_ascii=False)[1:-1]}
    forms.add(_JSON_U_ESCAPE_RE.sub(lambda m: "\\u" + m.group()[2:].upper(), ascii_form))
    forms |= {form.replace("/", "\\/") for form in forms}
    return forms


def _url_forms(plain: str) -> set[str]:
    forms = {
        quote(plain, safe="", errors="surrogatepass"),
        quote(plain, safe="/", errors="surrogatepass"),
        quote_plus(plain, safe="", errors="surrogatepass"),
        quote_plus(plain, safe="/", errors="surrogatepass"),
    }
    forms |= {_HEX_ESCAPE_RE.sub(lambda m: m.group().lower(), form) for form in forms}
    return forms


def _base64_forms(data: bytes) -> set[bytes]:
    forms: set[bytes] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        padded = encode(data)
        forms |= {padded, padded.rstrip(b"=")}
        # The value at byte offset r (0, 1, 2) of a 3-byte group inside a longer payload:
        # only the characters whose 6 bits all come from the value are predictable.
        for offset in range(3):
            encoded = encode(b"\0" * offset + data + b"\0\0")
            first = -(-8 * offset // 6)
            last = 8 * (offset + len(data)) // 6
            middle = encoded[first:last]
            if len(middle) >= _MIN_EMBEDDED_BASE64_LENGTH:
                forms.add(middle)
    return forms


def _forms(plain: str) -> list[bytes]:
    """All byte patterns to scrub for one plaintext: the raw value first, then encodings."""
    raw = _utf8(plain)
    if not raw:
        return []
    encoded = {_utf8(form) for form in _json_forms(plain) | _url_forms(plain)}
    encoded |= _base64_forms(raw)
    encoded.discard(raw)
    return [raw, *sorted(p for p in encoded if len(p) >= _MIN_ENCODED_LENGTH)]


class Scrubber:
    """Replace every injected value (and its encoded forms) with ``[REDACTED:NAME]``.

    ``values`` maps secret NAME to plaintext value; ``extra_patterns`` maps a NAME to further
    plaintexts that are redacted under that name, with the same encodings (for example the
    ``user:value`` pair of HTTP basic auth, whose base64 is what an echo shows). Build one per
    outbound request from exactly the values injected into it. ``repr()`` shows names only.
    """

    __slots__ = ("_by_first", "_first_byte_re", "_max_len", "_names", "_regex", "_replacements")

    def __init__(
        self,
        values: Mapping[str, str],
        extra_patterns: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        plaintexts: dict[str, list[str]] = {name: [value] for name, value in values.items()}
        for name, extras in (extra_patterns or {}).items():
            plaintexts.setdefault(name, []).extend(extras)
        self._names: tuple[str, ...] = tuple(sorted(plaintexts))

        # When two names yield the same bytes, the first name in sorted order keeps it, so
        # the output does not depend on dict order.
        replacements: dict[bytes, bytes] = {}
        for name in self._names:
            marker = redaction_marker(name).encode("ascii", "backslashreplace")
            for plain in plaintexts[name]:
                for pattern in _forms(plain):
                    replacements.setdefault(pattern, marker)
        self._replacements = replacements

        ordered = sorted(replacements, key=lambda p: (-len(p), p))
        self._max_len = len(ordered[0]) if ordered else 0
        self._regex: re.Pattern[bytes] | None = (
            re.compile(b"|".join(re.escape(p) for p in ordered)) if ordered else None
        )
        # For the stream's "could this suffix still become a match?" question: patterns
        # grouped by first byte (longest first), each with a short prefix for a cheap check.
        by_first: dict[int, list[tuple[bytes, bytes]]] = {}
        for pattern in ordered:
            if len(pattern) > 1:
                by_first.setdefault(pattern[0], []).append((pattern, pattern[:_QUICK_PREFIX]))
        self._by_first = by_first
        self._first_byte_re: re.Pattern[bytes] | None = (
            re.compile(b"[" + b"".join(re.escape(bytes([b])) for b in sorted(by_first)) + b"]")
            if by_first
            else None
        )

    @property
    def names(self) -> tuple[str, ...]:
        """Names whose values this scrubber redacts, sorted."""
        return self._names

    @property
    def max_hold_back(self) -> int:
        """Most bytes a stream ever keeps back: the longest pattern's length minus one."""
        return max(self._max_len - 1, 0)

    def __repr__(self) -> str:
        return f"Scrubber(names={list(self._names)!r}, patterns={len(self._replacements)})"

    def _replace(self, match: re.Match[bytes]) -> bytes:
        return self._replacements[match.group()]

    def scrub_bytes(self, data: bytes) -> bytes:
        """Scrub a complete body in one pass."""
        if self._regex is None:
            return bytes(data)
        return self._regex.sub(self._replace, data)

    def scrub_text(self, text: str) -> str:
        """Scrub a complete string (UTF-8 round trip; a match never splits a character)."""
        if self._regex is None:
            return text
        return self.scrub_bytes(_utf8(text)).decode("utf-8", "surrogatepass")

    def scrub_headers(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Scrub header values; names are kept because a marker is not a valid header name.

        HTTP clients may decode non-ASCII header bytes as Latin-1, which turns a UTF-8 value
        into mojibake, so Latin-1-representable values are also scrubbed byte for byte.
        """
        if self._regex is None:
            return list(headers)
        scrubbed = []
        for name, value in headers:
            clean = self.scrub_text(value)
            if not clean.isascii():
                with contextlib.suppress(UnicodeEncodeError):  # not Latin-1: no mojibake
                    clean = self.scrub_bytes(clean.encode("latin-1")).decode("latin-1")
            scrubbed.append((name, clean))
        return scrubbed

    def stream(self) -> ScrubStream:
        """Start scrubbing one body that arrives in chunks."""
        return ScrubStream(self)

    def _partial_start(self, buf: bytes) -> int:
        """Earliest index whose suffix is a proper prefix of some pattern, else ``len(buf)``.

        Only the last ``max_hold_back`` bytes can start such a suffix. Everything before the
        returned index is final: any pattern starting there is either complete in ``buf`` or
        already mismatched, so matching it now gives the same result as matching it later.
        """
        end = len(buf)
        if self._first_byte_re is None:
            return end
        candidate = self._first_byte_re.search(buf, max(0, end - self.max_hold_back))
        while candidate is not None:
            start = candidate.start()
            remaining = end - start
            for pattern, quick in self._by_first[buf[start]]:
                if len(pattern) <= remaining:
                    break  # longest first: the rest are too short to extend past the end
                if remaining >= _QUICK_PREFIX and not buf.startswith(quick, start):
                    continue
                if pattern.startswith(buf[start:]):
                    return start
            candidate = self._first_byte_re.search(buf, start + 1)
        return end


class ScrubStream:
    """Scrub one chunked body: ``feed()`` each chunk, then ``finish()``.

    The concatenated output equals ``scrubber.scrub_bytes(whole_body)``. A ``feed()`` returns
    everything except a trailing suffix that is a proper prefix of some pattern (at most
    ``scrubber.max_hold_back`` bytes), so a chunk that cannot begin a value passes through at
    once and a value split across chunks is still caught.
    """

    __slots__ = ("_finished", "_held", "_scrubber")

    def __init__(self, scrubber: Scrubber) -> None:
        self._scrubber = scrubber
        self._held = b""
        self._finished = False

    @property
    def held_back(self) -> int:
        """Bytes currently retained because they might be the start of a value."""
        return len(self._held)

    def __repr__(self) -> str:
        return (
            f"ScrubStream(names={list(self._scrubber.names)!r}, held_back={len(self._held)}, "
            f"finished={self._finished})"
        )

    def feed(self, chunk: bytes) -> bytes:
        """Scrub ``chunk`` and return every byte that is already safe to send."""
        if self._finished:
            raise RuntimeError("ScrubStream.feed() called after finish()")
        scrubber = self._scrubber
        if scrubber._regex is None:
            return bytes(chunk)
        if not chunk:
            return b""
        buf = self._held + bytes(chunk)
        safe = scrubber._partial_start(buf)
        out: list[bytes] = []
        pos = 0
        for match in scrubber._regex.finditer(buf):
            start = match.start()
            if start >= safe:
                break
            out.append(buf[pos:start])
            out.append(scrubber._replacements[match.group()])
            pos = match.end()
        cut = max(safe, pos)
        out.append(buf[pos:cut])
        self._held = buf[cut:]
        return b"".join(out)

    def finish(self) -> bytes:
        """End of body: scrub and return what was held back (a prefix that never completed)."""
        if self._finished:
            return b""
        self._finished = True
        held, self._held = self._held, b""
        return self._scrubber.scrub_bytes(held)
