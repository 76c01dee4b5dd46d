"""``POST /scan`` with the server root under ``$HOME``, the usual ``jupyter lab`` setup.

jupyter_server hands its root to extensions as ``~/...`` in that case; the scan must expand
it rather than answer 404 for every path.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def jp_root_dir(jp_home_dir: Path) -> Path:
    root = jp_home_dir / "work"
    root.mkdir()
    return root


async def test_scan_works_with_a_root_under_home(runtime, api, jp_root_dir, jp_serverapp, canary):
    assert jp_serverapp.web_app.settings["server_root_dir"].startswith("~")
    runtime.secrets.create("admin", "KEY", canary)
    (jp_root_dir / "leak.py").write_text(f"key = '{canary}'\n")
    status, report = await api("POST", "scan", body={"path": ""})
    assert status == 200, report
    assert report["findings"] == [{"path": "leak.py", "names": ["KEY"], "count": 1}]
    assert (await api("POST", "scan", body={"path": "../"}))[0] == 422, "still confined"


async def test_a_nul_in_the_path_is_a_422(api):
    status, body = await api("POST", "scan", body={"path": "a\x00b"})
    assert status == 422 and "NUL" in body["message"]
