"""``labextension/src/protocol.ts`` mirrors ``jupyter_secrets/protocol.py``: same names, values."""

from __future__ import annotations

import re
from pathlib import Path

from jupyter_secrets import protocol

MIRROR = Path(__file__).resolve().parents[1] / "labextension" / "src" / "protocol.ts"
#: What the front-end must know: the API, the proxy's headers, the panel's comm protocol.
REQUIRED = {
    "API_PATH", "ERROR_HEADER", "OVERHEAD_HEADER", "PANEL_REFRESH", "PANEL_CHANGED",
    "WIDGET_MODULE", "WIDGET_MODULE_VERSION", "PANEL_MODEL", "PANEL_VIEW",
}


def typescript_constants(source: str) -> dict[str, str]:
    """``export const NAME = 'value';`` (single or double quotes) -> {NAME: value}."""
    pattern = re.compile(r"""^export const ([A-Z][A-Z0-9_]*) = (['"])(.*?)\2;\s*$""", re.M)
    return {name: value for name, _quote, value in pattern.findall(source)}


def test_typescript_constants_parse() -> None:
    parsed = typescript_constants("export const A_B = 'x';\nexport const C = \"y/z\";\n"
                                  "const HIDDEN = 'no';\nexport const lower = 'no';\n")
    assert parsed == {"A_B": "x", "C": "y/z"}


def test_the_typescript_mirror_agrees_with_protocol_py() -> None:
    source = MIRROR.read_text("utf-8")
    mirrored = typescript_constants(source)
    declared = re.findall(r"^export const (\w+)", source, re.M)
    assert sorted(declared) == sorted(mirrored), "every exported constant is a plain string"
    missing = REQUIRED - set(mirrored)
    assert not missing, f"protocol.ts lacks {sorted(missing)}"
    for name, value in mirrored.items():
        assert hasattr(protocol, name), f"protocol.ts exports {name}, protocol.py has none"
        assert getattr(protocol, name) == value, (
            f"{name}: protocol.py says {getattr(protocol, name)!r}, protocol.ts says {value!r}")


def test_the_labextension_version_is_the_widget_module_version() -> None:
    import json

    package = json.loads((MIRROR.parents[1] / "package.json").read_text("utf-8"))
    assert package["name"] == protocol.WIDGET_MODULE
    assert package["version"] == protocol.WIDGET_MODULE_VERSION
