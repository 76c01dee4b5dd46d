"""The notebook panel (names, never values): the browser draws it, the kernel displays it."""

from __future__ import annotations

from ._api import APIError, SecretsAPI
from .panel import SecretsPanel, SecretsPanelView

__all__ = ["APIError", "SecretsAPI", "SecretsPanel", "SecretsPanelView"]
