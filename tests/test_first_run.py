"""First run: ``make run`` serves a working copy of the notebooks, and the quickstart explains
what to set up (in the Secrets sidebar) instead of failing with a traceback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "notebooks" / "quickstart.ipynb"


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), *args],
                          capture_output=True, text=True, timeout=120)


def test_make_run_serves_a_working_copy_made_once(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    workspace = tmp_path / "workspace"
    first = make("workspace", f"WORKSPACE={workspace}")
    assert first.returncode == 0, first.stderr
    tracked = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(p.name for p in workspace.glob("*.ipynb")) == tracked
    assert (workspace / "quickstart.ipynb").read_bytes() == QUICKSTART.read_bytes()
    # The demo's edits stay: a second run copies nothing over them.
    (workspace / "quickstart.ipynb").write_text("{}", "utf-8")
    again = make("workspace", f"WORKSPACE={workspace}")
    assert again.returncode == 0 and "copied" not in again.stdout
    assert (workspace / "quickstart.ipynb").read_text("utf-8") == "{}"
    # The working copy ignores itself: nothing in it shows up for git.
    status = subprocess.run(["git", "-C", str(tmp_path), "status", "--porcelain"],
                            capture_output=True, text=True, check=True)
    assert status.stdout == ""
    # And it is what `make run` serves, not the tracked notebooks/ folder.
    dry = make("-n", "run", f"WORKSPACE={workspace}")
    assert f"--ServerApp.root_dir={workspace}" in dry.stdout, dry.stdout
    assert "root_dir=notebooks" not in dry.stdout


async def test_quickstart_without_setup_says_what_to_do(jp_serverapp, jp_fetch, http_server,
                                                         runtime) -> None:
    nb = nbformat.read(QUICKSTART, as_version=4)
    response = await jp_fetch("api", "kernels", method="POST", body="{}")
    kernel_id = json.loads(response.body)["id"]
    runner = NotebookClient(nb, km=jp_serverapp.kernel_manager.get_kernel(kernel_id),
                            timeout=120)
    try:
        await runner.async_execute()  # raises CellExecutionError on any traceback
    finally:
        if runner.kc is not None:
            runner.kc.stop_channels()
    await jp_fetch("api", "kernels", kernel_id, method="DELETE")
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.outputs)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                if o.output_type == "error"]
    assert "No connection named 'openai' yet" in text
    assert "Secrets sidebar" in text and "New connection" in text
    assert "No secret named 'EXAMPLE_TOKEN' yet" in text
    assert text.count("Skipped:") == 3
    assert "never gives a secret's value" in text
