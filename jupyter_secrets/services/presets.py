"""Connection presets: what a user would otherwise look up for each provider.

Each preset says where the provider's API is, where the key goes, the headers it needs, a
cheap call that proves the key works, the environment variables its SDK reads, and the
keyword arguments of its SDK client. Base URLs are what the provider's own SDK joins its
paths to (checked against each SDK's source), so the SDK pointed at the connection's proxy
URL calls the same paths it would call upstream:

========================  ==============================================================
preset                    SDK client (kernel side)
========================  ==============================================================
openai                    ``OpenAI(**kw)``; base URL with ``/v1`` (the SDK adds
                          ``/chat/completions``)
anthropic                 ``Anthropic(**kw)``; no ``/v1`` (the SDK adds ``/v1/messages``)
gemini                    ``genai.Client(**kw)``: ``api_key`` and ``http_options.base_url``;
                          the SDK adds ``v1beta/models/...``; key in ``x-goog-api-key``
mistral                   ``Mistral(**kw)``: ``server_url``; the SDK adds ``/v1/...``
cohere                    ``cohere.ClientV2(**kw)``; the SDK adds ``/v2/chat``
huggingface               ``InferenceClient(**kw)``: the router without ``/v1`` (the SDK adds
                          ``/v1/chat/completions``); ``OpenAI`` needs ``/v1``
azure-openai              ``AzureOpenAI(**kw)``: ``azure_endpoint`` (the SDK adds
                          ``/openai/deployments/...``); key in ``api-key``; per resource
openrouter                ``OpenAI(**kw)``
groq, together            ``Groq(**kw)``, ``Together(**kw)`` (their own SDKs add
                          ``/openai/v1/...`` and ``/v1/...``)
bedrock                   boto3 ``bedrock-runtime`` with a Bedrock API key as a bearer token
                          (``AWS_BEARER_TOKEN_BEDROCK``); SigV4 and Vertex/ADC need
                          credentials the proxy does not hold
github                    the REST API (``X-GitHub-Api-Version``)
http                      anything else: the admin gives the base URL and auth
========================  ==============================================================

Templates (``env`` values and ``sdks`` keyword arguments) may use ``{base_url}`` (the
connection's proxy URL) and ``{token}`` (the kernel's own token), never a secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The shape most SDKs take: ``Client(base_url=..., api_key=...)``.
BASE_AND_KEY: dict[str, Any] = {"base_url": "{base_url}", "api_key": "{token}"}


def _openai(suffix: str = "") -> dict[str, Any]:
    """``OpenAI(**kw)`` against an OpenAI-compatible path below the connection."""
    return {"base_url": "{base_url}" + suffix, "api_key": "{token}"}


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
    #: SDK name -> keyword arguments of its client (templates as in ``env``, nested for
    #: SDKs that take an options object); the first is the preset's own SDK, what
    #: ``js.connection(name).sdk_kwargs()`` returns.
    sdks: dict[str, dict[str, Any]] = field(default_factory=lambda: {"openai": BASE_AND_KEY})
    #: Shown when a connection of this preset is created without a base URL.
    base_url_example: str = "https://api.example.com/v1"

    def to_json(self, name: str) -> dict[str, object]:
        return {"name": name, "base_url": self.base_url, "auth": dict(self.auth),
                "headers": dict(self.headers), "test_path": self.test_path,
                "env": dict(self.env), "sdks": {k: dict(v) for k, v in self.sdks.items()},
                "base_url_example": self.base_url_example}


BEARER = {"scheme": "bearer"}

PRESETS: dict[str, Preset] = {
    "openai": Preset(
        "https://api.openai.com/v1", BEARER, test_path="/models",
        env={"OPENAI_BASE_URL": "{base_url}", "OPENAI_API_KEY": "{token}"},
    ),
    "anthropic": Preset(
        "https://api.anthropic.com", {"scheme": "header", "header": "x-api-key"},
        {"anthropic-version": "2023-06-01"}, test_path="/v1/models",
        env={"ANTHROPIC_BASE_URL": "{base_url}", "ANTHROPIC_API_KEY": "{token}"},
        sdks={"anthropic": BASE_AND_KEY},
    ),
    "gemini": Preset(
        "https://generativelanguage.googleapis.com",
        {"scheme": "header", "header": "x-goog-api-key"}, test_path="/v1beta/models",
        env={"GOOGLE_GEMINI_BASE_URL": "{base_url}", "GEMINI_API_KEY": "{token}"},
        sdks={"google-genai": {"api_key": "{token}", "http_options": {"base_url": "{base_url}"}}},
    ),
    "mistral": Preset(
        # mistralai reads MISTRAL_API_KEY but no base URL variable: Mistral(server_url=
        # os.environ["MISTRAL_BASE_URL"]).
        "https://api.mistral.ai", BEARER, test_path="/v1/models",
        env={"MISTRAL_BASE_URL": "{base_url}", "MISTRAL_API_KEY": "{token}"},
        sdks={"mistralai": {"server_url": "{base_url}", "api_key": "{token}"},
              "openai": _openai("/v1")},
    ),
    "cohere": Preset(
        "https://api.cohere.com", BEARER, test_path="/v1/models",
        env={"CO_API_URL": "{base_url}", "CO_API_KEY": "{token}"},
        sdks={"cohere": BASE_AND_KEY, "openai": _openai("/compatibility/v1")},
    ),
    "huggingface": Preset(
        # InferenceClient reads HF_TOKEN but no router URL variable: InferenceClient(
        # base_url=os.environ["HF_ROUTER_URL"]). HF_HUB_DISABLE_IMPLICIT_TOKEN keeps the
        # kernel token out of Hub downloads (huggingface.co refuses a token it did not issue).
        "https://router.huggingface.co", BEARER, test_path="/v1/models",
        env={"HF_ROUTER_URL": "{base_url}", "HF_TOKEN": "{token}",
             "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1"},
        sdks={"huggingface_hub": BASE_AND_KEY, "openai": _openai("/v1")},
    ),
    "azure-openai": Preset(
        # Per resource: the admin gives https://RESOURCE.openai.azure.com. OPENAI_API_VERSION
        # is a default AzureOpenAI() needs; change it in the connection's env.
        None, {"scheme": "header", "header": "api-key"},
        test_path="/openai/models?api-version=2024-10-21",
        env={"AZURE_OPENAI_ENDPOINT": "{base_url}", "AZURE_OPENAI_API_KEY": "{token}",
             "OPENAI_API_VERSION": "2024-10-21"},
        sdks={"AzureOpenAI": {"azure_endpoint": "{base_url}", "api_key": "{token}",
                                     "api_version": "2024-10-21"},
              "openai": _openai("/openai/v1")},
        base_url_example="https://YOUR-RESOURCE.openai.azure.com (your Azure OpenAI "
                         "resource's endpoint, without /openai)",
    ),
    "openrouter": Preset(
        "https://openrouter.ai/api/v1", BEARER, test_path="/key",
        env={"OPENROUTER_BASE_URL": "{base_url}", "OPENROUTER_API_KEY": "{token}"},
    ),
    "groq": Preset(
        "https://api.groq.com", BEARER, test_path="/openai/v1/models",
        env={"GROQ_BASE_URL": "{base_url}", "GROQ_API_KEY": "{token}"},
        sdks={"groq": BASE_AND_KEY, "openai": _openai("/openai/v1")},
    ),
    "together": Preset(
        "https://api.together.ai", BEARER, test_path="/v1/models",
        env={"TOGETHER_BASE_URL": "{base_url}", "TOGETHER_API_KEY": "{token}"},
        sdks={"together": BASE_AND_KEY, "openai": _openai("/v1")},
    ),
    "bedrock": Preset(
        # The region is part of the host: change base_url for another one. boto3 reads the
        # endpoint and the bearer token from these variables (no keyword for the token).
        "https://bedrock-runtime.us-east-1.amazonaws.com", BEARER,
        env={"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": "{base_url}",
             "AWS_BEARER_TOKEN_BEDROCK": "{token}"},
        sdks={"boto3": {"endpoint_url": "{base_url}"}, "openai": _openai("/openai/v1")},
        base_url_example="https://bedrock-runtime.us-east-1.amazonaws.com",
    ),
    "github": Preset(
        "https://api.github.com", BEARER, {"X-GitHub-Api-Version": "2022-11-28"},
        test_path="/user",
        env={"GITHUB_API_URL": "{base_url}", "GITHUB_TOKEN": "{token}"},
        sdks={"http": BASE_AND_KEY},
    ),
    "http": Preset(None, BEARER, sdks={"http": BASE_AND_KEY}),
}


def missing_base_url(preset_name: str) -> str:
    """What to say when a connection of ``preset_name`` is created without a base URL."""
    example = PRESETS[preset_name].base_url_example
    return f"The {preset_name} preset needs a base_url, like {example}."
