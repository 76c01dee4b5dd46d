"""Scrub echoes of injected secret values out of upstream responses, with value-blind timing.

An upstream may echo what it received: httpbin-style echo endpoints, error pages that quote the
request, debug headers. Whatever value the proxy injected must not travel back to the kernel,
so every response header and body byte passes through a :class:`Scrubber` that replaces each
injected value, and its usual encodings (``forms.py``), with ``[REDACTED:NAME]``. Matching is
one Aho-Corasick pass over the bytes (``matcher.py``); at any position the longest pattern wins,
so a value that contains another value is redacted as a whole.

Streams: when bytes are released (the timing promise)
----------------------------------------------------
A stream that held bytes back *because they might start a value* would tell a stopwatch which
guesses are right: an upstream that echoes a guess and then pauses lets kernel code learn a
value a prefix at a time. So :meth:`Scrubber.stream` picks, from the response's content type,
a rule that never looks at the values to decide when bytes leave:

* ``text/event-stream``: complete events only. Bytes are held up to the last event boundary
  (a blank line; ``\\n``, ``\\r\\n`` and ``\\r`` line endings) and every complete event is
  scrubbed whole and released at once. SSE clients act on complete events anyway, so this
  adds no latency; each upstream event leaves as soon as its last byte arrives.
* newline-delimited JSON (``application/x-ndjson``, ``application/jsonl``,
  ``application/json-seq`` and the like, see :data:`LINE_TYPES`): complete lines, the same
  way.
* everything else: a fixed window. The last :attr:`Scrubber.window` bytes are held whatever
  they are (``max(4 KiB, the longest pattern rounded up to a power of two)``, so lengths of
  values leak only as that coarse bucket), released as later bytes push them out, after the
  upstream has been silent for :data:`IDLE_FLUSH_S` (the relay runs that timer) and at the end.
* an event or line longer than :data:`MAX_RECORD` (1 MiB) falls back to the window rule until
  its boundary arrives.

So the moments bytes are released depend only on arrival times, byte counts, boundary bytes
(framing the caller sees anyway) and the window size; a wrong guess and a right prefix of a
value leave at the same moment. With no injected value the stream passes bytes straight on.

Not promised: the *content* still differs when a complete value (or encoding) is present,
because it is replaced: an echo of a complete correct guess comes back redacted, which confirms
the guess (the kernel has to know the whole value for that). The one release decision that
looks at matches concerns complete values too: a whole match straddling the window's edge is
released with the bytes before it (as its marker) rather than split, at the moment the marker
shows it anyway. A value cut by a release (an
upstream pausing longer than the idle timer in the middle of a value, a value with a line break
echoed inside an SSE or NDJSON stream, an event over the cap) is caught only partly: the part
released before the cut has passed, and the part after it is redacted because each release is
matched with the previous ``longest pattern - 1`` bytes as context. Transforms (spelling a key
with spaces, HTML entities, hex, hashes) are not scrubbed, and compressed bodies must be decoded
before scrubbing.

Base64 of a value *embedded* in a longer base64 payload can only be caught through its
offset-independent middle, so up to two base64 characters at each edge (at most 4 bits of the
value each) survive around the marker. To redact such a payload completely (HTTP basic auth
echoing ``base64(user:value)``), pass the whole plaintext (``f"{user}:{value}"``) through
``extra_patterns``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping
from typing import Literal

from .forms import forms, redactable, redaction_marker, utf8
from .matcher import Matcher

__all__ = [
    "IDLE_FLUSH_S",
    "LINE_TYPES",
    "MAX_RECORD",
    "ScrubStream",
    "Scrubber",
    "redaction_marker",
    "stream_rule",
]

Rule = Literal["event", "line", "window", "none"]

#: Seconds of upstream silence after which a window-rule stream releases what it holds.
IDLE_FLUSH_S = 0.05
#: Smallest fixed window held back by window-rule streams.
MIN_WINDOW = 4096
#: Longest event or line held whole; beyond it the window rule applies until its end.
MAX_RECORD = 1024 * 1024
EVENT_TYPES = frozenset({"text/event-stream"})
LINE_TYPES = frozenset({
    "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonl",
    "application/jsonlines", "application/x-jsonlines", "application/json-seq",
    "application/stream+json", "application/x-json-stream",
})
# Two line endings in a row, CRLF counting as one: the end of an SSE event.
_EVENT_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")


def stream_rule(content_type: str | None) -> Rule:
    """The release rule for a response of this ``Content-Type`` (parameters ignored)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in EVENT_TYPES:
        return "event"
    if media in LINE_TYPES:
        return "line"
    return "window"


class Scrubber:
    """Replace every given value (and its encoded forms) with ``[REDACTED:NAME]``.

    ``values`` maps secret NAME to plaintext value; ``extra_patterns`` maps a NAME to further
    plaintexts that are redacted under that name, with the same encodings (for example the
    ``user:value`` pair of HTTP basic auth, whose base64 is what an echo shows).

    ``min_length`` 0 (the proxy) scrubs every value however short; redaction of files and
    logs passes its minimum, and values that are shorter or only whitespace are skipped
    (see ``forms.redactable``). ``repr()`` shows names only; a scrubber cannot be pickled.
    """

    __slots__ = ("_matcher", "_names", "_replacements", "window")

    def __init__(
        self,
        values: Mapping[str, str],
        extra_patterns: Mapping[str, Iterable[str]] | None = None,
        *,
        min_length: int = 0,
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
                if min_length and not redactable(plain, min_length):
                    continue
                for pattern in forms(plain):
                    replacements.setdefault(pattern, marker)
        self._replacements = replacements
        self._matcher = Matcher(replacements)
        longest = self._matcher.max_length
        self.window = max(MIN_WINDOW, 1 << max(longest - 1, 0).bit_length()) if longest else 0

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("scrubbers hold secret values and cannot be pickled")

    @property
    def names(self) -> tuple[str, ...]:
        """Names whose values this scrubber redacts, sorted."""
        return self._names

    @property
    def max_pattern_length(self) -> int:
        """Length of the longest pattern (0 when there is nothing to scrub)."""
        return self._matcher.max_length

    def __repr__(self) -> str:
        return f"Scrubber(names={list(self._names)!r}, patterns={len(self._replacements)})"

    def spans(self, data: bytes) -> list[tuple[int, int]]:
        """Where the matches are in ``data`` (start, end), in order: what would be replaced."""
        return [(start, end) for start, end, _ in self._matcher.find(data)]

    def scrub_bytes(self, data: bytes) -> bytes:
        """Scrub a complete body in one pass."""
        return self._matcher.sub(bytes(data))

    def scrub_text(self, text: str) -> str:
        """Scrub a complete string (UTF-8 round trip; a match never splits a character)."""
        if not self._replacements or not text:
            return text
        data = utf8(text)
        out = self._matcher.sub(data)
        return text if out is data else out.decode("utf-8", "surrogatepass")

    def scrub_headers(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Scrub header values; names are kept because a marker is not a valid header name.

        HTTP clients may decode non-ASCII header bytes as Latin-1, which turns a UTF-8 value
        into mojibake, so Latin-1-representable values are also scrubbed byte for byte.
        """
        if not self._replacements:
            return list(headers)
        scrubbed = []
        for name, value in headers:
            clean = self.scrub_text(value)
            if not clean.isascii():
                with contextlib.suppress(UnicodeEncodeError):  # not Latin-1: no mojibake
                    clean = self.scrub_bytes(clean.encode("latin-1")).decode("latin-1")
            scrubbed.append((name, clean))
        return scrubbed

    def stream(self, content_type: str | None = None) -> ScrubStream:
        """Start scrubbing one body that arrives in chunks, released by its type's rule."""
        return ScrubStream(self, stream_rule(content_type) if self._replacements else "none")

    def _scrub_region(self, data: bytes, context: int) -> tuple[bytes, int]:
        """Scrub ``data[context:]``; ``data[:context]`` was released before and is context.

        A match lying wholly in the context was dealt with then. A match that starts in the
        context and runs into the new bytes was cut by the previous release: its new part is
        replaced by the marker. Returns the output and the end of the last match (0: none).
        """
        out: list[bytes] = []
        pos = context
        last_end = 0
        for start, end, replacement in self._matcher.find(data):
            if end <= context:
                continue
            out.append(data[pos:max(start, context)])
            out.append(replacement)
            pos = last_end = end
        out.append(data[pos:])
        return b"".join(out), last_end


class ScrubStream:
    """Scrub one chunked body: ``feed()`` each chunk, ``flush()`` when idle, ``finish()``.

    Which bytes a ``feed()`` releases follows the stream's rule (module docstring), never
    the values. Without cuts inside values (no idle flush, no cap fallback), the concatenated
    output equals ``scrubber.scrub_bytes(whole_body)``.
    """

    __slots__ = ("_context", "_finished", "_held", "_overflow", "_scrubber", "rule")

    def __init__(self, scrubber: Scrubber, rule: Rule) -> None:
        self._scrubber = scrubber
        self.rule: Rule = rule
        self._held = b""  # received, not yet released
        self._context = b""  # the released bytes just before ``_held``, for cut matches
        self._overflow = False  # the current event/line outgrew MAX_RECORD
        self._finished = False

    @property
    def held_back(self) -> int:
        """Bytes received and not yet released."""
        return len(self._held)

    @property
    def idle_flushable(self) -> bool:
        """Whether :meth:`flush` would release bytes (window rule, or an oversized record)."""
        return bool(self._held) and (self.rule == "window" or self._overflow)

    def __repr__(self) -> str:
        return (
            f"ScrubStream(names={list(self._scrubber.names)!r}, rule={self.rule}, "
            f"held_back={len(self._held)}, finished={self._finished})"
        )

    def feed(self, chunk: bytes) -> bytes:
        """Take ``chunk``; return the bytes its rule releases now, scrubbed."""
        if self._finished:
            raise RuntimeError("ScrubStream.feed() called after finish()")
        if self.rule == "none":
            return bytes(chunk)
        if not chunk:
            return b""
        held = self._held + bytes(chunk)
        self._held = held
        if self.rule == "window":
            return self._release_window()
        cut = self._boundary(held, len(held) - len(chunk))
        if cut:
            self._overflow = False
            return self._release(cut)
        if len(held) > MAX_RECORD:
            self._overflow = True
        return self._release_window() if self._overflow else b""

    def flush(self) -> bytes:
        """The upstream went quiet: release what the window holds (a no-op for whole records)."""
        if self._finished or not self.idle_flushable:
            return b""
        return self._release(len(self._held))

    def finish(self) -> bytes:
        """End of body: release everything still held."""
        if self._finished:
            return b""
        self._finished = True
        return self._release(len(self._held)) if self._held else b""

    def _boundary(self, held: bytes, new_from: int) -> int:
        """End of the last complete event/line in ``held`` (0: none yet)."""
        start = max(new_from - 3, 0)  # a boundary may begin in the bytes held before
        if self.rule == "line":
            return held.rfind(b"\n", start) + 1
        cut = 0
        for match in _EVENT_END.finditer(held, start):
            cut = match.end()
        return cut

    def _release_window(self) -> bytes:
        """Release all but the last ``window`` bytes (a match starting before the cut whole)."""
        cut = len(self._held) - self._scrubber.window
        if cut <= 0:
            return b""
        context = len(self._context)
        # A match starting before the cut is complete: the window is no shorter than the
        # longest pattern. Release through its end rather than split it.
        for start, end, _ in self._scrubber._matcher.find(self._context + self._held):
            if start - context >= cut:
                break
            cut = max(cut, end - context)
        return self._release(cut)

    def _release(self, cut: int) -> bytes:
        region, self._held = self._held[:cut], self._held[cut:]
        context = len(self._context)
        out, last_end = self._scrubber._scrub_region(self._context + region, context)
        # Context for the next release: released bytes after the last match, at most the
        # longest pattern minus one (older bytes cannot be part of a match into new bytes).
        tail = self._context + region
        keep = max(self._scrubber.max_pattern_length - 1, 0)
        self._context = tail[max(len(tail) - keep, last_end):] if keep else b""
        return out
