"""Spec of ``{{secrets.NAME}}`` placeholders in ad-hoc outbound requests."""

from __future__ import annotations

import pytest

from jupyter_secrets.boundary.placeholders import (
    PLACEHOLDER_RE,
    UnknownPlaceholder,
    contains_header_unsafe,
    find_names,
    substitute,
)
from jupyter_secrets.errors import InvalidInput


class TestFindNames:
    @pytest.mark.parametrize(
        ("text", "names"),
        [
            ("Bearer {{secrets.API_KEY}}", {"API_KEY"}),
            ("Bearer {{ secrets.API_KEY }}", {"API_KEY"}),
            ("{{\tsecrets.api_key\t}}", {"API_KEY"}),
            ("{{secrets._x1}}", {"_X1"}),
            ("{{secrets.A}}:{{secrets.B}} {{secrets.a}}", {"A", "B"}),
            ("no placeholders here", set()),
        ],
    )
    def test_names_are_found_and_upper_cased(self, text: str, names: set[str]) -> None:
        assert find_names(text) == names

    @pytest.mark.parametrize(
        "text",
        [
            "{{secrets.1ABC}}",  # names do not start with a digit
            "{{secrets.}}",
            "{{secrets.A-B}}",
            "{{secret.A}}",
            "{{SECRETS.A}}",
            "{secrets.A}",
            "{{secrets.A}",
            "{{\nsecrets.A}}",  # a placeholder does not span lines
            "{{secrets . A}}",
        ],
    )
    def test_near_misses_are_not_placeholders(self, text: str) -> None:
        assert find_names(text) == set()
        assert PLACEHOLDER_RE.search(text) is None


class TestSubstitute:
    def test_fills_every_placeholder(self) -> None:
        values = {"USER": "alice", "TOKEN": "t0k3n"}
        text = "{{secrets.user}}:{{ secrets.TOKEN }} and again {{secrets.TOKEN}}"
        assert substitute(text, values) == "alice:t0k3n and again t0k3n"

    def test_text_without_placeholders_is_unchanged(self) -> None:
        assert substitute("plain {{ not.a.placeholder }}", {}) == "plain {{ not.a.placeholder }}"

    def test_values_are_inserted_literally_and_never_expanded(self) -> None:
        """A value that looks like a placeholder must not pull in another secret."""
        values = {"A": "{{secrets.B}}", "B": "other-value", "C": r"\1 \g<0> $1"}
        assert substitute("{{secrets.A}}", values) == "{{secrets.B}}"
        assert substitute("{{secrets.C}}", values) == r"\1 \g<0> $1"

    def test_unknown_name_is_reported_by_name(self) -> None:
        values = {"KNOWN": "value-that-must-not-leak"}
        with pytest.raises(UnknownPlaceholder) as caught:
            substitute("{{secrets.KNOWN}} {{secrets.missng}} {{secrets.OTHER}}", values)
        error = caught.value
        assert error.name == "MISSNG"  # the first unknown name, in text order
        message = str(error)
        assert "MISSNG" in message
        assert "create a secret named MISSNG" in message
        assert "fix the spelling" in message
        assert "value-that-must-not-leak" not in message
        assert "value-that-must-not-leak" not in repr(error)

    def test_unknown_placeholder_is_a_key_error_and_invalid_input(self) -> None:
        """KeyError for callers doing lookups; InvalidInput so REST answers 400."""
        error = UnknownPlaceholder("X")
        assert isinstance(error, KeyError)
        assert isinstance(error, InvalidInput)
        assert str(error).startswith("Unknown secret 'X'")  # not KeyError's quoted repr


class TestHeaderSafety:
    @pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\0b", "\r\n", "token\n"])
    def test_cr_lf_nul_are_unsafe(self, value: str) -> None:
        assert contains_header_unsafe(value)

    @pytest.mark.parametrize("value", ["sk-abc", "a b\tc", "ünïcødé", "", "a\\nb"])
    def test_ordinary_values_are_safe(self, value: str) -> None:
        assert not contains_header_unsafe(value)
