"""Find many literal byte patterns in one pass: Aho-Corasick automata over bytes.

Pure and free of I/O, like the rest of ``boundary``. The patterns are secret values and their
encodings, so objects here show counts, never patterns, and refuse to be pickled.

Two shapes:

* :class:`Matcher` replaces: leftmost-longest, non-overlapping (at any position the longest
  pattern wins, then the search resumes after it), which is what the response scrubber and the
  redaction of files need.
* :class:`Detector` only answers *which names* have a pattern somewhere in a text (overlapping
  search, so a pattern hidden inside a longer one is still seen). The value index keeps its
  large automata in this shape: the usual answer is "none", found in one pass, and the few
  names found are then replaced with a small :class:`Matcher`.

Library: ``ahocorasick-rs`` (the Rust ``aho-corasick`` crate) rather than ``pyahocorasick``.
Measured on this project's 2-core machine with 100,000 token-like patterns and 10 MB of text
(``benchmarks/redaction.py`` records the figures): ``ahocorasick-rs`` searches 10 MB in about
10-40 ms with the GIL released, and has a native leftmost-longest mode over ``bytes``;
``pyahocorasick`` wheels are built for ``str`` (bytes must be smuggled through Latin-1), its
leftmost-longest iterator is a non-standard "longest" heuristic, and its searches take 70-180 ms
holding the GIL, stalling the server's event loop. Both hold the GIL while *building* (about a
second for 100,000 patterns, growing faster than linearly), which is why the value index
builds many small automata instead of one large one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ahocorasick_rs import BytesAhoCorasick, Implementation, MatchKind

__all__ = ["Detector", "Matcher"]


class _NoPickle:
    __slots__ = ()

    def __reduce__(self) -> object:
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
    value). Built as a contiguous NFA: it builds several times faster than a DFA and searches
    almost as fast.
    """

    __slots__ = ("_automaton", "_names", "size")

    def __init__(self, patterns: Mapping[bytes, Iterable[str]]) -> None:
        ordered = sorted(p for p in patterns if p)
        self._names: list[tuple[str, ...]] = [tuple(sorted(set(patterns[p]))) for p in ordered]
        self.size = len(ordered)
        self._automaton: BytesAhoCorasick | None = (
            BytesAhoCorasick(ordered, implementation=Implementation.ContiguousNFA)
            if ordered else None
        )

    def __repr__(self) -> str:
        return f"Detector(patterns={self.size})"

    def names_in(self, data: bytes | bytearray | memoryview) -> set[str]:
        if self._automaton is None:
            return set()
        found = self._automaton.find_matches_as_indexes(data, overlapping=True)
        if not found:
            return set()
        names: set[str] = set()
        for index in {index for index, _, _ in found}:
            names.update(self._names[index])
        return names
