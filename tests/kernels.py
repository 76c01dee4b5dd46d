"""Run code in real kernels started through the server's REST API, and keep every message."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class KernelRun:
    """Everything a kernel sent back for one execution."""

    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> str:
        """stdout/stderr, results and error tracebacks, as a person would see them."""
        parts: list[str] = []
        for msg in self.messages:
            content = msg["content"]
            if msg["msg_type"] == "stream":
                parts.append(content["text"])
            elif msg["msg_type"] in ("execute_result", "display_data"):
                parts.append(str(content["data"].get("text/plain", "")))
            elif msg["msg_type"] == "error":
                parts.extend([content["ename"], content["evalue"], *content["traceback"]])
        return "".join(parts)

    @property
    def raw(self) -> str:
        return json.dumps(self.messages, default=str)

    @property
    def error(self) -> str | None:
        for msg in self.messages:
            if msg["msg_type"] == "error":
                return f"{msg['content']['ename']}: {msg['content']['evalue']}"
        return None


class Kernel:
    def __init__(self, serverapp: Any, kernel_id: str) -> None:
        self.serverapp = serverapp
        self.kernel_id = kernel_id
        self.client = serverapp.kernel_manager.get_kernel(kernel_id).client()
        self.runs: list[KernelRun] = []

    async def start(self) -> Kernel:
        self.client.start_channels()
        await self.client.wait_for_ready(timeout=60)
        return self

    async def run(self, code: str, *, timeout: float = 120) -> KernelRun:
        run = KernelRun()
        self.runs.append(run)
        reply = await self.client.execute_interactive(
            code, timeout=timeout, output_hook=lambda msg: run.messages.append(msg),
            allow_stdin=False,
        )
        run.messages.append(reply)
        return run

    async def check(self, code: str) -> str:
        """Run code that must succeed; return what it printed."""
        run = await self.run(code)
        assert run.error is None, run.text
        return run.text

    def stop(self) -> None:
        self.client.stop_channels()
