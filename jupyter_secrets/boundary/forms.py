"""The byte patterns that stand for one secret value: the value and its usual encodings.

Pure functions over a plaintext, used by the response scrubber (``scrub.py``) and the value
index (``egress/redaction.py``). Their results are the value in other spellings, so callers
keep them in memory only and never show them.

Encoded forms, for every value (forms shorter than 4 bytes are skipped because they would
redact ordinary text; the raw value itself is always kept):

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

Redaction of saved files, scans and log lines (not the proxy) skips short values, see
:func:`redactable`.
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, quote_plus

__all__ = ["detection_forms", "forms", "redactable", "redaction_marker"]

# Encoded forms shorter than this would redact ordinary text ("abc" URL-encodes to itself,
# but a 2-byte value base64-encodes to 3 characters that show up everywhere).
MIN_ENCODED_LENGTH = 4
# The offset-independent middle of an embedded base64 value must be long enough that a
# multi-megabyte base64 image is vanishingly unlikely to contain it by chance (64**8).
MIN_EMBEDDED_BASE64_LENGTH = 8
_HEX_ESCAPE_RE = re.compile(r"%[0-9A-F]{2}")
_JSON_U_ESCAPE_RE = re.compile(r"\\u[0-9a-f]{4}")


def redaction_marker(name: str) -> str:
    """Return the text that replaces a value of secret ``name``: names are safe to show."""
    return f"[REDACTED:{name}]"


def utf8(text: str) -> bytes:
    # surrogatepass: a value that arrived as JSON may hold a lone surrogate; it must still
    # be scrubbable rather than crash the response path.
    return text.encode("utf-8", "surrogatepass")


def redactable(plain: str, min_length: int) -> bool:
    """Whether redaction of files and logs looks for this value at all.

    A value shorter than ``min_length`` characters, or made only of whitespace, would turn
    indentation into markers and cut words apart (``very`` -> ``[REDACTED:X]ery``), and
    redacting it would confirm a short guess to anyone who saves one.
    """
    return len(plain) >= min_length and not plain.isspace() and bool(plain)


def _json_forms(plain: str) -> set[str]:
    ascii_form = json.dumps(plain)[1:-1]
    found = {ascii_form, json.dumps(plain, ensure_ascii=False)[1:-1]}
    found.add(_JSON_U_ESCAPE_RE.sub(lambda m: "\\u" + m.group()[2:].upper(), ascii_form))
    found |= {form.replace("/", "\\/") for form in found}
    return found


def _url_forms(plain: str) -> set[str]:
    found = {
        quote(plain, safe="", errors="surrogatepass"),
        quote(plain, safe="/", errors="surrogatepass"),
        quote_plus(plain, safe="", errors="surrogatepass"),
        quote_plus(plain, safe="/", errors="surrogatepass"),
    }
    found |= {_HEX_ESCAPE_RE.sub(lambda m: m.group().lower(), form) for form in found}
    return found


def _base64_forms(data: bytes) -> set[bytes]:
    found: set[bytes] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        padded = encode(data)
        found |= {padded, padded.rstrip(b"=")}
        # The value at byte offset r (0, 1, 2) of a 3-byte group inside a longer payload:
        # only the characters whose 6 bits all come from the value are predictable.
        for offset in range(3):
            encoded = encode(b"\0" * offset + data + b"\0\0")
            first = -(-8 * offset // 6)
            last = 8 * (offset + len(data)) // 6
            middle = encoded[first:last]
            if len(middle) >= MIN_EMBEDDED_BASE64_LENGTH:
                found.add(middle)
    return found


def forms(plain: str) -> list[bytes]:
    """All byte patterns to scrub for one plaintext: the raw value first, then encodings."""
    raw = utf8(plain)
    if not raw:
        return []
    encoded = {utf8(form) for form in _json_forms(plain) | _url_forms(plain)}
    encoded |= _base64_forms(raw)
    encoded.discard(raw)
    return [raw, *sorted(p for p in encoded if len(p) >= MIN_ENCODED_LENGTH)]


def detection_forms(plain: str) -> list[bytes]:
    """The fewest forms whose presence reveals every form: none contains another.

    Every form of :func:`forms` contains one of these (padded base64 contains the unpadded,
    which starts with the offset-0 middle), so a text holds some form of the value exactly
    when it holds one of these. Typical API keys need 4 patterns here instead of 6 to 9.
    """
    minimal: list[bytes] = []
    for form in sorted(set(forms(plain)), key=len):
        if not any(kept in form for kept in minimal):
            minimal.append(form)
    return minimal
