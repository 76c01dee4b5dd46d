"""Find many literal byte patterns in one pass: Aho-Corasick automata over bytes.

Pure and free of I/O, like the rest of ``boundary``. The patterns are secret values and their
encodings, so objects here show counts, never patterns, and refuse to be pickled.

Two shapes:

* :class:`Matcher` replaces: leftmost-longest, non-overlapping (at any position the longest
  pattern wins, then the search resumes after it), which is what the response scrubber and the
  redaction of files need.
* :class:`Detector` only answers *which names* have a pattern somewhere in a text (every
  occurrence counts, even one hidden inside a longer pattern). The value index keeps its
  large automata in this shape: the usual answer is "none", found in one pass, and the few
  names found are then replaced with a small :class:`Matcher`.

Library: ``ahocorasick-rs`` (the Rust ``aho-corasick`` crate) rather than ``pyahocorasick``.
Measured on this project's 2-core machine, 100,000 encoded API-key patterns over 10 MiB of text
(``python benchmarks/redaction.py --libraries`` repeats it): ``ahocorasick-rs`` searched in
18 ms with the GIL released, ``pyahocorasick`` in 58 ms holding the GIL (so the server's event
loop stalls for the whole search); ``pyahocorasick`` wheels work on ``str`` only (bytes must be
smuggled through Latin-1) and have no true leftmost-longest mode, while ``ahocorasick-rs``
matches ``bytes`` leftmost-longest natively. Both hold the GIL while *building*: about a second
for 100,000 whole patterns (1.2 s and 1.0 s), growing faster than linearly with the bytes in
the trie. That is why a :class:`Detector` keeps only 8-byte anchors in its automaton (about
20 ms for 10,000 keys) and the value index splits its values into segments and a delta.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ahocorasick_rs import BytesAhoCorasick, MatchKind

__all__ = ["ANCHOR", "Detector", "Matcher"]

#: Bytes of each pattern (its start) that a :class:`Detector`'s automaton holds.
ANCHOR = 8
# Patterns sharing one anchor beyond which a hit is resolved by a dict, not a scan.
_CROWDED = 8


class _NoPickle:
    __slots__ = ()

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("matchers hold secret values and cannot be pickled")


class Matcher(_NoPickle):
    """Leftmost-longest replacement of literal byte patterns.

    ``replacements`` maps each pattern to the bytes that replace it. Empty patterns are
    ignored. The result equals a regular expression alternation of the escaped patterns
    sorted longest first.
    """

    __slots__ = ("_automaton", "_replacements", "max_length", "size")

    def __init__(self, replacements: Mapping[bytes, bytes]) -> None:
        patterns = sorted(p for p in replacements if p)
        self._replacements: list[bytes] = [replacements[p] for p in patterns]
        self.size = len(patterns)
        self.max_length = max(map(len, patterns), default=0)
        self._automaton: BytesAhoCorasick | None = (
            BytesAhoCorasick(patterns, matchkind=MatchKind.LeftmostLongest) if patterns else None
        )

    def __repr__(self) -> str:
        return f"Matcher(patterns={self.size})"

    def find(self, data: bytes | bytearray | memoryview) -> list[tuple[int, int, bytes]]:
        """``(start, end, replacement)`` of every match, in order, non-overlapping."""
        if self._automaton is None:
            return []
        found = self._automaton.find_matches_as_indexes(data)
        return [(start, end, self._replacements[index]) for index, start, end in found]

    def sub(self, data: bytes) -> bytes:
        """``data`` with every match replaced (the same object when nothing matched)."""
        if self._automaton is None:
            return data
        found = self._automaton.find_matches_as_indexes(data)
        if not found:
            return data
        out: list[bytes] = []
        pos = 0
        for index, start, end in found:
            out.append(data[pos:start])
            out.append(self._replacements[index])
            pos = end
        out.append(data[pos:])
        return b"".join(out)


class Detector(_NoPickle):
    """Which names have at least one of their patterns in a text.

    ``patterns`` maps each pattern to the names it belongs to (two secrets may share a
    value). The automaton holds only each pattern's first :data:`ANCHOR` bytes, which keeps
    both of its costs down (measured with 10,000 API keys, 40,000 patterns):

    * the build, which holds the GIL, grows with the bytes in the trie and faster than
      linearly: about 20 ms for the anchors instead of over a second for whole patterns;
    * the search: real keys start alike (``sk-``, ``ghp_``, their base64 ``c2st``), so over
      ordinary text the automaton rarely leaves its root (about 3 ns a byte).

    Each anchor hit is then checked exactly against the patterns that share it (found by
    their next :data:`ANCHOR` bytes in a dict when many do, so thousands of keys sharing
    ``sk-proj-`` cost one lookup per hit, not thousands of comparisons). The search is
    leftmost-longest (small sets get a SIMD prefilter); anchors that start under a reported
    one are looked up inside its span, so overlapping occurrences are seen too.
    """

    __slots__ = ("_automaton", "_buckets", "_index", "_lengths", "size")

    def __init__(self, patterns: Mapping[bytes, Sequence[str]]) -> None:
        buckets: dict[bytes, list[tuple[bytes, Sequence[str]]]] = {}
        for pattern, names in patterns.items():
            if pattern:
                buckets.setdefault(pattern[:ANCHOR], []).append((pattern, names))
        self.size = len(patterns)
        anchors = list(buckets)
        # Per anchor: its patterns, or for a crowded anchor a dict by the next bytes.
        self._buckets: list[Any] = [
            entries if len(entries) <= _CROWDED else _by_next_part(entries)
            for entries in buckets.values()
        ]
        self._index = {anchor: i for i, anchor in enumerate(anchors)}
        self._lengths = sorted({len(a) for a in anchors})
        self._automaton: BytesAhoCorasick | None = (
            BytesAhoCorasick(anchors, matchkind=MatchKind.LeftmostLongest) if anchors else None
        )

    def __repr__(self) -> str:
        return f"Detector(patterns={self.size}, anchors={len(self._index)})"

    def names_in(self, data: bytes) -> set[str]:
        if self._automaton is None:
            return set()
        found = self._automaton.find_matches_as_indexes(data)
        if not found:
            return set()
        hits: set[tuple[int, int]] = set()  # (anchor index, where it starts)
        index = self._index
        for _, start, end in found:
            for at in range(start, end):  # anchors starting under this one, or shorter
                for length in self._lengths:
                    hit = index.get(data[at:at + length])
                    if hit is not None:
                        hits.add((hit, at))
        names: set[str] = set()
        for hit, at in hits:
            bucket = self._buckets[hit]
            if isinstance(bucket, dict):
                after = at + ANCHOR
                entries = [e for length, by_next in bucket.items()
                           for e in by_next.get(data[after:after + length], ())]
            else:
                entries = bucket
            for pattern, owners in entries:
                if data.startswith(pattern, at):
                    names.update(owners)
        return names


def _by_next_part(
    entries: list[tuple[bytes, Sequence[str]]],
) -> dict[int, dict[bytes, list[tuple[bytes, Sequence[str]]]]]:
    """Index patterns sharing an anchor by their next ``ANCHOR`` bytes (length -> part)."""
    table: dict[int, dict[bytes, list[tuple[bytes, Sequence[str]]]]] = {}
    for pattern, names in entries:
        part = pattern[ANCHOR:2 * ANCHOR]
        table.setdefault(len(part), {}).setdefault(part, []).append((pattern, names))
    return table
