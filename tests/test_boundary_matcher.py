"""Aho-Corasick matching: the same answers as a longest-first regex alternation, and the
segment/delta layers of the value index (pure parts, no store)."""

from __future__ import annotations

import random
import re

import pytest

from jupyter_secrets.boundary.forms import detection_forms, forms, redactable
from jupyter_secrets.boundary.layers import (
    Layers,
    Segment,
    build_detector,
    plan_compaction,
)
from jupyter_secrets.boundary.matcher import Detector, Matcher


def regex_sub(replacements: dict[bytes, bytes], data: bytes) -> bytes:
    """The previous implementation: one alternation, longest pattern first."""
    ordered = sorted(replacements, key=lambda p: (-len(p), p))
    regex = re.compile(b"|".join(re.escape(p) for p in ordered))
    return regex.sub(lambda m: replacements[m.group()], data)


@pytest.mark.parametrize("seed", range(200))
def test_matcher_equals_the_longest_first_alternation(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = b"abc"  # tiny alphabet: patterns overlap, nest and share prefixes a lot
    patterns = {bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 6)))
                for _ in range(rng.randint(1, 12))}
    replacements = {p: b"<%d>" % i for i, p in enumerate(sorted(patterns))}
    data = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
    assert Matcher(replacements).sub(data) == regex_sub(replacements, data)


def test_matcher_reports_positions_and_passes_clean_text_through_unchanged() -> None:
    matcher = Matcher({b"secret": b"[S]", b"secret-extended": b"[L]"})
    assert matcher.find(b"a secret-extended secret") == [(2, 17, b"[L]"), (18, 24, b"[S]")]
    clean = b"nothing here"
    assert matcher.sub(clean) is clean
    assert Matcher({}).sub(clean) is clean and Matcher({}).find(clean) == []
    assert repr(matcher) == "Matcher(patterns=2)"


@pytest.mark.parametrize("seed", range(300))
def test_detector_finds_exactly_the_names_whose_patterns_occur(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = b"ab-"  # patterns overlap, nest and share anchors and second parts
    patterns: dict[bytes, list[str]] = {}
    for i in range(rng.randint(1, 15)):
        length = rng.choice([1, 3, 7, 8, 9, 12, 16, 17, 24])
        pattern = bytes(rng.choice(alphabet) for _ in range(length))
        patterns.setdefault(pattern, []).append(f"N{i}")
    data = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
    expected = {n for p, names in patterns.items() if p in data for n in names}
    assert Detector(patterns).names_in(data) == expected


def test_detector_sees_a_pattern_hidden_inside_a_longer_one() -> None:
    detector = Detector({b"abcdefgh": ["LONG"], b"cdef": ["INNER"], b"zzzz": ["A", "B"]})
    assert detector.names_in(b"..abcdefgh..") == {"LONG", "INNER"}
    assert detector.names_in(b"zzzz") == {"A", "B"}
    assert detector.names_in(b"nothing") == set()
    assert "abcd" not in repr(detector)


def test_detection_forms_cover_every_form_with_fewer_patterns() -> None:
    rng = random.Random(3)
    token = "sk-" + "".join(rng.choice("0123456789abcdef") for _ in range(40))
    assert len(detection_forms(token)) == 4 < len(forms(token))  # raw + 3 base64 middles
    for value in [token, 'P@ss w0rd/"x"é-long-enough', "ghp_AbC+/=_-~" * 3, "sk-" + "ab" * 10]:
        minimal = detection_forms(value)
        every = forms(value)
        assert len(minimal) <= len(every)
        assert all(any(m in f for m in minimal) for f in every)
        assert not any(a != b and a in b for a in minimal for b in minimal)


@pytest.mark.parametrize(("value", "expected"), [
    ("12345678", True), ("1234567", False), ("x", False), ("        ", False),
    ("\t\n  \t\n  ", False), ("  padded-value  ", True), ("", False),
])
def test_redactable_skips_short_and_blank_values(value: str, expected: bool) -> None:
    assert redactable(value, 8) is expected


def detector(values: dict[str, str]) -> Detector:
    return build_detector({name: detection_forms(v) for name, v in values.items()})


def segment(values: dict[str, str], version: int = 1) -> Segment:
    return Segment(built={n: (n.lower(), version) for n in values}, detector=detector(values))


def test_layers_ignore_stale_copies_and_add_the_delta() -> None:
    old = {"A": "alpha-value-1", "B": "bravo-value-1"}
    layers = Layers(
        segments=(segment(old),),
        stale=(frozenset({"B"}),),  # B was replaced: its old value is no longer stored
        delta=detector({"B": "bravo-value-2"}),
        delta_names=frozenset({"B"}),
    )
    assert layers.passes == 2
    assert layers.names_in(b"alpha-value-1 bravo-value-1") == {"A"}
    assert layers.names_in(b"bravo-value-2") == {"B"}
    assert layers.names_in(b"neither") == set()


def test_a_shared_value_stays_found_when_one_of_its_names_goes_stale() -> None:
    layers = Layers(segments=(segment({"A": "shared-value", "B": "shared-value"}),),
                    stale=(frozenset({"A"}),))
    assert layers.names_in(b"shared-value") == {"B"}


def test_compaction_rebuilds_only_segments_with_stale_copies_then_fills_the_emptiest() -> None:
    segments = (segment({"A": "aaaaaaaa1", "B": "bbbbbbbb1"}),
                segment({"C": "cccccccc1"}),
                segment({"D": "dddddddd1", "E": "eeeeeeee1"}))
    stale = (frozenset(), frozenset({"C"}), frozenset())
    plans = plan_compaction(segments, stale, ["F", "G", "H"], capacity=2)
    assert plans == {1: ["F", "G"], 3: ["H"]}  # 0 and 2 are full and clean: untouched
    plans = plan_compaction(segments, stale, ["F"], capacity=3)
    assert plans == {1: ["F"]}  # the stale segment takes the delta first
    assert plan_compaction(segments, (frozenset(),) * 3, [], capacity=2) == {}
