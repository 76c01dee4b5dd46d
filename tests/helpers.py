"""Shared test helpers."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx

ADMIN = {"Authorization": "token alice-token"}
USER = {"Authorization": "token bob-token"}
ANONYMOUS = {"Authorization": "token not-a-token"}


def canary_forms(canary: str) -> set[str]:
    raw = canary.encode()
    return {
        canary,
        quote(canary, safe=""),
        quote_plus(canary),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }


def assert_no_canary(canary: str, *haystacks: str | bytes, where: str = "") -> None:
    """Fail naming where the canary (or an encoded form of it) was found."""
    forms = canary_forms(canary)
    for index, haystack in enumerate(haystacks):
        text = haystack.decode("latin-1") if isinstance(haystack, bytes) else haystack
        for form in forms:
            assert form not in text, f"canary leaked in {where or 'output'} #{index}"


JUPYTER = str(Path(sys.executable).with_name("jupyter"))


async def http(method: str, url: str, **kwargs: Any) -> httpx.Response:
    """A real client call from a thread, so the server's event loop keeps serving."""

    def call() -> httpx.Response:
        with httpx.Client(timeout=30) as client:
            return client.request(method, url, **kwargs)

    return await asyncio.to_thread(call)


async def stream_reads(method: str, url: str, **kwargs: Any) -> tuple[httpx.Response, list]:
    """Stream a response from a thread, noting when each raw chunk arrived."""

    def call() -> tuple[httpx.Response, list[tuple[float, bytes]]]:
        started = time.monotonic()
        reads: list[tuple[float, bytes]] = []
        with httpx.Client(timeout=30) as client, client.stream(method, url, **kwargs) as r:
            for chunk in r.iter_raw():
                reads.append((time.monotonic() - started, chunk))
        return r, reads

    return await asyncio.to_thread(call)


def run_cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``jupyter secrets ARGS`` in a subprocess, as a person would run it."""
    return subprocess.run([JUPYTER, "secrets", *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=60)
