"""Detect many named values in text, updated one value at a time: segments plus a delta.

Pure bookkeeping for the value index (``egress/redaction.py``), no I/O, no threads. Building an
Aho-Corasick automaton holds the GIL for a time that grows with the number of values (about
20 ms for 10,000 API keys with the anchored :class:`~.matcher.Detector`), so rebuilding it on
every write would stall the server's event loop and make a write cost O(stored values).
Instead:

* **segments**: automata over up to :data:`SEGMENT_NAMES` values each (one at 10,000), each
  recording which version (token) of each value it was built from;
* **stale**: per segment, the names whose copy there is outdated (the value was replaced or
  deleted); their hits are ignored;
* **delta**: one small automaton over the values that no segment holds live (new or replaced
  since the segments were built), rebuilt on every change;
* **compaction**: moves delta values into segments, rebuilding only the segments concerned,
  one at a time, in the background.

A write therefore costs one small delta build, whatever the number of stored values, and a
search costs one pass per segment plus one for the delta.
:class:`Layers` is an immutable snapshot, so readers never wait for writers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .matcher import Detector

__all__ = [
    "DELTA_NAMES", "SEGMENT_NAMES", "Layers", "Segment", "Token", "build_detector",
    "plan_compaction",
]

#: Values per segment: about 40,000-60,000 anchors for API keys, a build of tens of ms.
SEGMENT_NAMES = 16_384
#: Values the delta may hold before a compaction is due regardless of the delay.
DELTA_NAMES = 256

Token = tuple[str, int]  # (secret id, version): which value a copy was built from


def build_detector(values: Mapping[str, Sequence[bytes]]) -> Detector:
    """A detector over name -> the value's detection forms (``forms.detection_forms``)."""
    patterns: dict[bytes, list[str]] = {}
    for name, found in values.items():
        for form in found:
            patterns.setdefault(form, []).append(name)
    return Detector(patterns)


@dataclass(frozen=True, eq=False)
class Segment:
    """One base automaton and the version of each value it was built from."""

    built: Mapping[str, Token]
    detector: Detector

    def __repr__(self) -> str:
        return f"Segment({len(self.built)} values, {self.detector.size} patterns)"


@dataclass(frozen=True, eq=False)
class Layers:
    """A consistent view for readers: segments, what is stale in each, and the delta."""

    segments: tuple[Segment, ...] = ()
    stale: tuple[frozenset[str], ...] = ()
    delta: Detector | None = None
    delta_names: frozenset[str] = field(default_factory=frozenset)

    def __repr__(self) -> str:
        return (f"Layers(segments={len(self.segments)}, stale={sum(map(len, self.stale))}, "
                f"delta={len(self.delta_names)})")

    @property
    def passes(self) -> int:
        """Automaton passes one search makes."""
        return len(self.segments) + (self.delta is not None)

    def names_in(self, data: bytes) -> set[str]:
        """Names of the live values that occur in ``data`` (any encoded form)."""
        found: set[str] = set()
        for segment, stale in zip(self.segments, self.stale, strict=True):
            hits = segment.detector.names_in(data)
            if hits:
                found |= hits - stale
        if self.delta is not None:
            found |= self.delta.names_in(data)
        return found


def plan_compaction(
    segments: tuple[Segment, ...],
    stale: tuple[frozenset[str], ...],
    delta_names: Iterable[str],
    *,
    capacity: int = SEGMENT_NAMES,
) -> dict[int, list[str]]:
    """Which segments to rebuild (by index; new ones past the end) and with which names.

    Segments with stale copies are rebuilt with their live names; the delta's names fill
    them, then the emptiest segments, then new ones, up to ``capacity`` names each.
    """
    queue = sorted(delta_names)
    live = [[n for n in s.built if n not in st] for s, st in zip(segments, stale, strict=True)]
    plans: dict[int, list[str]] = {}
    for index in range(len(segments)):
        if stale[index]:
            names = live[index]
            take = max(capacity - len(names), 0)
            plans[index] = names + queue[:take]
            del queue[:take]
    by_room = sorted((len(live[i]), i) for i in range(len(segments)) if i not in plans)
    for size, index in by_room:
        if not queue:
            break
        if size < capacity:
            take = capacity - size
            plans[index] = live[index] + queue[:take]
            del queue[:take]
    next_index = len(segments)
    while queue:
        plans[next_index] = queue[:capacity]
        del queue[:capacity]
        next_index += 1
    return plans
