"""Connection presets: what a user would otherwise look up for each provider."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Preset:
    base_url: str | None
    auth: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "openai": Preset("https://api.openai.com/v1", {"scheme": "bearer"}),
    "anthropic": Preset(
        "https://api.anthropic.com",
        {"scheme": "header", "header": "x-api-key"},
        {"anthropic-version": "2023-06-01"},
    ),
    "http": Preset(None, {"scheme": "bearer"}),
}
