"""Installing the package enables the server extension (and the labextension); its settings
are documented."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from jupyter_secrets.settings import SecretsSettings

from .helpers import JUPYTER


def test_server_extension_is_enabled_on_install():
    result = subprocess.run([JUPYTER, "server", "extension", "list"], capture_output=True,
                            text=True, timeout=120)
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    assert re.search(r"^\s*jupyter_secrets enabled$", output, re.M), output
    assert re.search(r"^\s*jupyter_secrets [0-9.]+ OK$", output, re.M), "it loads cleanly"


def test_labextension_is_installed_and_enabled():
    result = subprocess.run([JUPYTER, "labextension", "list"], capture_output=True, text=True,
                            timeout=120)
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    assert re.search(r"jupyter-secrets v[0-9.]+ enabled OK", output), output


def test_every_setting_is_in_the_readmes_configuration_table():
    """A trait nobody can find is a setting nobody uses (or one that surprises them)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(\w+)` \|", table, re.M))
    assert set(SecretsSettings.class_traits(config=True)) - documented == set()
