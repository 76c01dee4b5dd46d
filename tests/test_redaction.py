"""Stored values pasted into notebooks, files or logs are redacted; names say where."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import nbformat
import pytest

from .helpers import ADMIN, USER, assert_no_canary


@pytest.fixture
def stored(runtime, jp_serverapp, canary):
    runtime.secrets.create("admin", "OPENAI_API_KEY", canary)
    return canary


def notebook_with(value: str) -> dict:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            f'key = "{value}"\nprint(key)',
            outputs=[
                nbformat.v4.new_output("stream", name="stdout", text=f"{value}\n"),
                nbformat.v4.new_output("display_data", data={
                    "text/html": f"<b>{value}</b>", "application/json": {"k": value}}),
                nbformat.v4.new_output("error", ename="ValueError", evalue=f"bad {value}",
                                       traceback=[f"ValueError: bad {value}"]),
            ],
        ),
        nbformat.v4.new_markdown_cell(f"The key is `{value}`."),
    ]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "state": {"m1": {"state": {"value": value}}}}}
    return json.loads(nbformat.writes(nb))


async def test_saved_notebooks_are_redacted_everywhere(
    stored, server_log, jp_fetch, jp_root_dir: Path
):
    model = {"type": "notebook", "format": "json", "content": notebook_with(stored)}
    await jp_fetch("api", "contents", "leaky.ipynb", method="PUT", body=json.dumps(model))
    on_disk = (jp_root_dir / "leaky.ipynb").read_text()
    assert_no_canary(stored, on_disk, where="saved notebook")
    nb = nbformat.reads(on_disk, as_version=4)
    cell = nb.cells[0]
    assert cell.source == 'key = "[REDACTED:OPENAI_API_KEY]"\nprint(key)'
    assert cell.outputs[0]["text"] == "[REDACTED:OPENAI_API_KEY]\n"
    assert cell.outputs[1]["data"]["application/json"] == {"k": "[REDACTED:OPENAI_API_KEY]"}
    assert cell.outputs[2]["traceback"] == ["ValueError: bad [REDACTED:OPENAI_API_KEY]"]
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert state["m1"]["state"]["value"] == "[REDACTED:OPENAI_API_KEY]"
    log = server_log()
    assert "redacted OPENAI_API_KEY from leaky.ipynb" in log
    assert_no_canary(stored, log, where="server log")


@pytest.mark.parametrize("name", ["script.py", "notes.txt", "config.json", "prod.env"])
async def test_saved_text_files_are_redacted(stored, jp_fetch, jp_root_dir: Path, name):
    text = f"OPENAI_API_KEY={stored}\n"
    model = {"type": "file", "format": "text", "content": text}
    await jp_fetch("api", "contents", name, method="PUT", body=json.dumps(model))
    assert (jp_root_dir / name).read_text() == "OPENAI_API_KEY=[REDACTED:OPENAI_API_KEY]\n"


async def test_files_without_values_are_saved_unchanged(stored, jp_fetch, jp_root_dir: Path):
    text = "nothing secret here: sk-not-the-key\n"
    model = {"type": "file", "format": "text", "content": text}
    await jp_fetch("api", "contents", "clean.txt", method="PUT", body=json.dumps(model))
    assert (jp_root_dir / "clean.txt").read_text() == text


@pytest.fixture
def redaction_off(secrets_config):
    secrets_config["redact_on_save"] = False


@pytest.mark.usefixtures("redaction_off")
async def test_redaction_on_save_can_be_turned_off(stored, jp_fetch, jp_root_dir: Path):
    model = {"type": "file", "format": "text", "content": stored}
    await jp_fetch("api", "contents", "raw.txt", method="PUT", body=json.dumps(model))
    assert (jp_root_dir / "raw.txt").read_text() == stored


async def test_scan_reports_names_and_paths_then_redacts_in_place(
    stored, api, jp_root_dir: Path, responses
):
    (jp_root_dir / "old").mkdir()
    (jp_root_dir / "old" / "a.ipynb").write_text(json.dumps(notebook_with(stored)))
    (jp_root_dir / "old" / "b.py").write_text(f"KEY = '{stored}'\n")
    (jp_root_dir / "old" / "clean.py").write_text("print('hi')\n")

    status, report = await api("POST", "scan", body={"path": "old"})
    assert status == 200, report
    assert report == {"redacted": False, "findings": [
        {"path": "old/a.ipynb", "names": ["OPENAI_API_KEY"], "count": 8},
        {"path": "old/b.py", "names": ["OPENAI_API_KEY"], "count": 1},
    ]}
    assert stored in (jp_root_dir / "old" / "b.py").read_text(), "a report changes nothing"

    status, report = await api("POST", "scan", body={"path": "old", "redact": True})
    assert status == 200 and report["redacted"] is True
    for path in (jp_root_dir / "old").iterdir():
        assert_no_canary(stored, path.read_text(), where=str(path))
    nbformat.validate(nbformat.read(jp_root_dir / "old" / "a.ipynb", as_version=4))
    _, again = await api("POST", "scan", body={"path": "old"})
    assert again["findings"] == []
    assert_no_canary(stored, *responses)


async def test_scan_refuses_paths_outside_the_root(stored, api):
    status, body = await api("POST", "scan", body={"path": "../../etc"})
    assert status == 422 and "root" in body["message"]
    assert (await api("POST", "scan", body={"path": "missing"}))[0] == 404
    assert (await api("POST", "scan", body={"path": 3}))[0] == 422


@pytest.mark.usefixtures("multi_user")
async def test_only_admins_scan(stored, api):
    assert (await api("POST", "scan", body={"path": ""}, headers=USER))[0] == 403
    assert (await api("POST", "scan", body={"path": ""}, headers=ADMIN))[0] == 200


async def test_log_lines_are_scrubbed(stored, jp_serverapp, server_log):
    logging.getLogger("ServerApp").warning("upstream said: invalid key %s", stored)
    logging.getLogger("tornado.application").error("boom with %s", stored)
    try:
        raise ValueError(f"Bearer {stored}")
    except ValueError:
        logging.getLogger("ServerApp.jupyter_secrets").exception("failed")
    log = server_log()
    assert "upstream said: invalid key [REDACTED:OPENAI_API_KEY]" in log
    assert "boom with [REDACTED:OPENAI_API_KEY]" in log
    assert_no_canary(stored, log, where="server log")


async def test_short_and_blank_values_never_mangle_saved_files(
    runtime, jp_fetch, jp_root_dir: Path, canary
):
    """Issue 8.8: a one-character or whitespace-only value (stored before such values were
    refused) must not turn indentation or words into markers; long values still go."""
    from jupyter_secrets import crypto
    from jupyter_secrets.crypto import Plaintext
    from jupyter_secrets.services.secrets import PutValue

    def legacy(name: str, raw: str) -> None:
        def seal(identity):
            return crypto.seal(runtime.secrets.keyring, identity, Plaintext(raw))

        runtime.secrets.apply([PutValue(name, seal, "admin", "upsert")])

    legacy("X", "x")
    legacy("SPACES", "    ")
    legacy("EIGHT_SPACES", "        ")
    runtime.secrets.create("admin", "SEVEN", "abc1234")
    runtime.secrets.create("admin", "TOKEN", canary)
    text = f"def very(x):\n        return 'abc1234' + '{canary}'\n"
    model = {"type": "file", "format": "text", "content": text}
    await jp_fetch("api", "contents", "code.py", method="PUT", body=json.dumps(model))
    assert (jp_root_dir / "code.py").read_text() == (
        "def very(x):\n        return 'abc1234' + '[REDACTED:TOKEN]'\n")
