"""Connection presets: what a user would otherwise look up for each provider."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Preset:
    base_url: str | None
    auth: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    #: A cheap GET below the base URL that proves the key works (the UI's "Test" button).
    test_path: str | None = None
    #: What kernels get when the connection exports its environment: variable -> template
    #: with ``{base_url}`` (this connection's proxy URL) and ``{token}`` (the kernel token).
    env: dict[str, str] = field(default_factory=dict)

    def to_json(self, name: str) -> dict[str, object]:
        return {"name": name, "base_url": self.base_url, "auth": dict(self.auth),
                "headers": dict(self.headers), "test_path": self.test_path,
                "env": dict(self.env)}


PRESETS: dict[str, Preset] = {
    "openai": Preset("https://api.openai.com/v1", {"scheme": "bearer"}, test_path="/models",
                     env={"OPENAI_BASE_URL": "{base_url}", "OPENAI_API_KEY": "{token}"}),
    "anthropic": Preset(
        "https://api.anthropic.com",
        {"scheme": "header", "header": "x-api-key"},
        {"anthropic-version": "2023-06-01"},
        test_path="/v1/models",
        env={"ANTHROPIC_BASE_URL": "{base_url}", "ANTHROPIC_API_KEY": "{token}"},
    ),
    "http": Preset(None, {"scheme": "bearer"}),
}
