"""``jupyter secrets``: same store and keys as the server, values only via stdin/prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pexpect

from jupyter_secrets.crypto import Keyring, open_sealed, reveal
from jupyter_secrets.keys import generate_key_text
from jupyter_secrets.store import open_store

from .helpers import JUPYTER, assert_no_canary
from .helpers import run_cli as run


def stored_value(env: dict[str, str], name: str) -> str:
    store = open_store(env["JUPYTER_SECRETS_STORE_URL"])
    record, sealed = store.get_sealed(name)
    return reveal(open_sealed(Keyring.from_text(env["JUPYTER_SECRETS_KEY"]), record.identity,
                              sealed))


def test_generate_key_prints_a_usable_key(cli_env):
    result = run(cli_env, "generate-key")
    assert result.returncode == 0
    key = result.stdout.strip()
    assert len(key) == 44
    Keyring.from_text(key)
    assert run(cli_env, "generate-key").stdout.strip() != key


def test_set_from_stdin_then_list_and_delete(cli_env, canary):
    result = run(cli_env, "set", "github-token", "--description", "CI bot",
                 "--allowed-host", "api.github.com", stdin=canary + "\n")
    assert result.returncode == 0, result.stderr
    assert "Saved GITHUB_TOKEN (version 1)" in result.stdout
    assert stored_value(cli_env, "GITHUB_TOKEN") == canary, "one trailing newline is stripped"

    listing = run(cli_env, "list")
    assert "GITHUB_TOKEN" in listing.stdout and "api.github.com" in listing.stdout
    as_json = run(cli_env, "list", "--json")
    assert '"name": "GITHUB_TOKEN"' in as_json.stdout

    again = run(cli_env, "set", "GITHUB_TOKEN", stdin=canary + "-v2")
    assert "version 2" in again.stdout

    deleted = run(cli_env, "delete", "github_token")
    assert deleted.returncode == 0 and "Deleted GITHUB_TOKEN" in deleted.stdout
    assert "No secrets yet" in run(cli_env, "list").stdout
    for result in (listing, as_json, again, deleted):
        assert_no_canary(canary, result.stdout, result.stderr, where="CLI output")


def test_keep_newline_keeps_stdin_exactly(cli_env):
    run(cli_env, "set", "PEM", "--keep-newline", stdin="line1\nline2\n")
    assert stored_value(cli_env, "PEM") == "line1\nline2\n"


def test_value_on_the_command_line_is_refused(cli_env, canary):
    result = run(cli_env, "set", "K", canary)
    assert result.returncode == 1
    assert "never taken from the command line" in result.stderr and "stdin" in result.stderr
    assert "No secrets yet" in run(cli_env, "list").stdout
    assert_no_canary(canary, result.stdout, result.stderr)


def test_errors_are_one_clear_line(cli_env):
    missing = run(cli_env, "delete", "NOPE")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: No secret named NOPE."
    empty = run(cli_env, "set", "K", stdin="")
    assert empty.returncode == 1 and "must not be empty" in empty.stderr
    bad = run(cli_env, "set", "9K", stdin="v")
    assert bad.returncode == 1 and "not a valid secret name" in bad.stderr
    assert "Traceback" not in missing.stderr + empty.stderr + bad.stderr


def test_hidden_prompt_asks_twice_and_never_echoes(cli_env, canary):
    child = pexpect.spawn(JUPYTER, ["secrets", "set", "PROMPTED"], env=cli_env,
                          encoding="utf-8", timeout=30)
    child.expect("Value \\(hidden\\): ")
    child.sendline(canary)
    child.expect("Repeat value: ")
    child.sendline(canary)
    child.expect(pexpect.EOF)
    transcript = child.before or ""
    assert "Saved PROMPTED (version 1)" in transcript
    assert canary not in transcript
    assert stored_value(cli_env, "PROMPTED") == canary


def test_mismatched_prompt_saves_nothing(cli_env):
    child = pexpect.spawn(JUPYTER, ["secrets", "set", "PROMPTED"], env=cli_env,
                          encoding="utf-8", timeout=30)
    child.expect("Value")
    child.sendline("one")
    child.expect("Repeat")
    child.sendline("two")
    child.expect(pexpect.EOF)
    assert "differ" in (child.before or "")
    assert "No secrets yet" in run(cli_env, "list").stdout


def test_rotation_rewraps_every_secret_and_loses_none(cli_env, canary):
    store = open_store(cli_env["JUPYTER_SECRETS_STORE_URL"])
    from jupyter_secrets.services.secrets import SecretsService

    old_key = cli_env["JUPYTER_SECRETS_KEY"]
    service = SecretsService(store, Keyring.from_text(old_key))
    items = [{"key": f"S{i:03}", "value": f"{canary}-{i}"} for i in range(100)]
    service.batch("test", items)

    new_key = generate_key_text()
    new_id = Keyring.from_text(new_key).primary.key_id
    rotating = dict(cli_env, JUPYTER_SECRETS_KEY=f"{new_key},{old_key}")
    result = run(rotating, "rotate-key")
    assert result.returncode == 0, result.stderr
    assert f"Re-wrapped 100 data key(s) under master key {new_id}" in result.stdout
    assert "set JUPYTER_SECRETS_KEY to the new key alone" in result.stdout
    assert store.key_ids_in_use() == {new_id}

    only_new = dict(cli_env, JUPYTER_SECRETS_KEY=new_key)
    for i in (0, 42, 99):
        assert stored_value(only_new, f"S{i:03}") == f"{canary}-{i}"
    assert run(rotating, "rotate-key").stdout.startswith("Re-wrapped 0 data key(s)")
    assert_no_canary(canary, result.stdout, result.stderr, where="rotate output")


def test_rotation_with_the_wrong_key_fails_clearly_and_changes_nothing(cli_env, canary):
    run(cli_env, "set", "A", stdin=canary)
    store = open_store(cli_env["JUPYTER_SECRETS_STORE_URL"])
    before = store.get_sealed("A")
    old_id = Keyring.from_text(cli_env["JUPYTER_SECRETS_KEY"]).primary.key_id
    wrong = dict(cli_env, JUPYTER_SECRETS_KEY=generate_key_text())
    result = run(wrong, "rotate-key")
    assert result.returncode == 1
    assert old_id in result.stderr and "JUPYTER_SECRETS_KEY" in result.stderr
    assert store.get_sealed("A") == before


def test_key_file_is_created_private_and_outside_the_store_folder(cli_env, tmp_path):
    env = dict(cli_env)
    del env["JUPYTER_SECRETS_KEY"]
    key_file = tmp_path / "data" / "jupyter_secrets.key"
    result = run(env, "set", "A", stdin="v")
    assert result.returncode == 0, result.stderr
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert str(key_file) in result.stderr, "where the key went is logged"
    assert key_file.parent != (tmp_path / "store")
    assert key_file.read_text().strip() not in result.stderr + result.stdout
    assert run(env, "set", "B", stdin="v").returncode == 0, "the same key file is reused"


def test_missing_key_file_with_a_full_store_is_an_error_not_a_new_key(cli_env, tmp_path):
    run(cli_env, "set", "A", stdin="v")
    env = dict(cli_env)
    del env["JUPYTER_SECRETS_KEY"]
    result = run(env, "list")
    assert result.returncode == 1
    assert "a new key could not open them" in result.stderr
    assert not (tmp_path / "data" / "jupyter_secrets.key").exists()


def test_key_file_readable_by_others_is_refused(cli_env, tmp_path):
    env = dict(cli_env)
    del env["JUPYTER_SECRETS_KEY"]
    run(env, "list")
    key_file = tmp_path / "data" / "jupyter_secrets.key"
    key_file.chmod(0o644)
    result = run(env, "list")
    assert result.returncode == 1
    assert f"chmod 600 {key_file}" in result.stderr


def test_cli_reads_the_servers_config_file(cli_env, tmp_path):
    config_dir = Path(cli_env["JUPYTER_CONFIG_DIR"])
    config_dir.mkdir(parents=True)
    other = tmp_path / "elsewhere" / "s.db"
    (config_dir / "jupyter_server_config.json").write_text(
        json.dumps({"SecretsExtensionApp": {"store_url": f"sqlite:///{other}"}})
    )
    env = dict(cli_env)
    del env["JUPYTER_SECRETS_STORE_URL"]
    assert run(env, "set", "A", stdin="v").returncode == 0
    assert other.exists()


def test_scan_reports_then_redacts_files(cli_env, canary, tmp_path):
    run(cli_env, "set", "GH_TOKEN", stdin=canary)
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "leak.py").write_text(f"token = '{canary}'\nagain = '{canary}'\n")
    (folder / "clean.py").write_text("print('hi')\n")
    report = run(cli_env, "scan", str(folder))
    assert report.returncode == 1, "found values make the scan fail, for CI use"
    assert report.stdout.strip() == f"{folder / 'leak.py'}: GH_TOKEN x2"
    redacted = run(cli_env, "scan", str(folder), "--redact")
    assert redacted.returncode == 0 and "(redacted)" in redacted.stdout
    assert (folder / "leak.py").read_text() == (
        "token = '[REDACTED:GH_TOKEN]'\nagain = '[REDACTED:GH_TOKEN]'\n")
    assert "No stored secret value found" in run(cli_env, "scan", str(folder)).stdout
    assert_no_canary(canary, report.stdout, report.stderr, redacted.stdout, where="scan output")


def test_edit_changes_metadata_and_keeps_the_value(cli_env, canary):
    run(cli_env, "set", "K", "--allowed-host", "a.example.com", stdin=canary)
    result = run(cli_env, "edit", "k", "--allowed-host", "b.example.com",
                 "--allowed-host", "*.c.example.com", "--description", "rotated monthly")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("Updated K: description 'rotated monthly'; allowed hosts "
                                     "b.example.com, *.c.example.com.")
    assert stored_value(cli_env, "K") == canary
    cleared = run(cli_env, "edit", "K", "--no-allowed-hosts")
    assert "none (connections only)" in cleared.stdout
    nothing = run(cli_env, "edit", "K")
    assert nothing.returncode == 1 and "Nothing to change" in nothing.stderr
    bad = run(cli_env, "edit", "K", "--allowed-host", "https://x/y")
    assert bad.returncode == 1 and "Invalid allowed host" in bad.stderr


def test_list_has_a_header_and_readable_times(cli_env):
    run(cli_env, "set", "K", "--allowed-host", "api.example.com", stdin="value-12345")
    lines = run(cli_env, "list").stdout.splitlines()
    assert lines[0].split()[:4] == ["NAME", "VERSION", "KIND", "UPDATED"]
    assert lines[1].startswith("K ") and "T" not in lines[1].split()[3]
    assert lines[1].split()[3].count("-") == 2, "a date, not an ISO timestamp"


def test_set_says_what_to_check(cli_env, canary):
    result = run(cli_env, "set", "K", stdin=f" {canary}\t\n")
    assert result.returncode == 0
    assert "starts or ends with whitespace" in result.stderr
    assert "no allowed hosts" in result.stdout and "--allowed-host HOST" in result.stdout
    assert stored_value(cli_env, "K") == f" {canary}\t", "kept exactly, only warned"
    quiet = run(cli_env, "set", "H", "--allowed-host", "a.example.com", stdin="clean-value")
    assert quiet.stderr == "" and "no allowed hosts" not in quiet.stdout
    assert_no_canary(canary, result.stdout, result.stderr)


def test_whitespace_only_values_are_refused(cli_env):
    result = run(cli_env, "set", "K", stdin="   \t ")
    assert result.returncode == 1 and "only whitespace" in result.stderr
    assert "No secrets yet" in run(cli_env, "list").stdout


def test_edit_placements(cli_env):
    run(cli_env, "set", "K", stdin="value-12345")
    result = run(cli_env, "edit", "K", "--placement", "body", "--placement", "header")
    assert result.stdout.strip() == "Updated K: placements header, body."
    assert "header,body" in run(cli_env, "list").stdout
    bad = run(cli_env, "edit", "K", "--placement", "cookie")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
