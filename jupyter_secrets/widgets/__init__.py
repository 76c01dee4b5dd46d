"""Notebook widgets for secrets admins: the panel and its value entry (names, never values)."""

from __future__ import annotations

from ._api import APIError, SecretsAPI
from .panel import SecretsPanel
from .value_entry import SecretValueInput

__all__ = ["APIError", "SecretValueInput", "SecretsAPI", "SecretsPanel"]
