"""The one validator: names, values, descriptions, allowed hosts."""

from __future__ import annotations

import pytest

from jupyter_secrets.crypto import reveal
from jupyter_secrets.errors import InvalidInput, TooLarge
from jupyter_secrets.validation import (
    normalize_name,
    validate_allowed_hosts,
    validate_description,
    validate_value,
)


@pytest.mark.parametrize(("raw", "name"), [
    ("OPENAI_API_KEY", "OPENAI_API_KEY"),
    ("  openai api-key ", "OPENAI_API_KEY"),
    ("a--b  c", "A_B_C"),
    ("_private", "_PRIVATE"),
    ("x" * 128, "X" * 128),
])
def test_names_are_normalized_env_var_style(raw, name):
    assert normalize_name(raw) == name


@pytest.mark.parametrize("raw", ["", " ", "9LIVES", "A.B", "A$B", "x" * 129, None, 3, "ß"])
def test_bad_names_say_what_a_good_one_looks_like(raw):
    with pytest.raises(InvalidInput, match=r"OPENAI_API_KEY|128"):
        normalize_name(raw)


def test_values_keep_whitespace_and_respect_the_byte_limit():
    assert reveal(validate_value(" a \n")) == " a \n"
    assert reveal(validate_value("é" * 16, max_bytes=32)) == "é" * 16
    with pytest.raises(TooLarge, match="at most 32 bytes"):
        validate_value("é" * 17, max_bytes=32)
    with pytest.raises(InvalidInput, match="empty"):
        validate_value("")


def test_allowed_hosts_are_normalized_and_deduplicated():
    assert validate_allowed_hosts(["API.Example.com", "api.example.com", "*.Example.org:8443"]) \
        == ("api.example.com", "*.example.org:8443")
    assert validate_allowed_hosts(None) == ()
    with pytest.raises(InvalidInput, match="list"):
        validate_allowed_hosts("api.example.com")
    with pytest.raises(InvalidInput, match="at most 64"):
        validate_allowed_hosts([f"h{i}.example.com" for i in range(65)])


def test_descriptions_are_trimmed_and_bounded():
    assert validate_description("  hi  ") == "hi"
    assert validate_description(None) == ""
    with pytest.raises(InvalidInput):
        validate_description("x" * 1025)
