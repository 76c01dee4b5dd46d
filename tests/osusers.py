"""Real OS users for tests that prove boundaries between processes.

The tests run as root; the processes under test run as throwaway users made with
``useradd`` and removed after. Those users cannot read root's Python (``/root`` is private),
so they get a small venv over Debian's ``/usr/bin/python3.11`` (the same minor version)
whose one ``.pth`` line adds this checkout's venv site-packages, readable by everyone.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SYSTEM_PYTHON = Path("/usr/bin/python3.11")


@dataclass(frozen=True)
class OSUser:
    name: str
    uid: int
    gid: int
    home: Path

    def popen_kwargs(self) -> dict[str, object]:
        """For ``subprocess.Popen``: run as this user (no wrapper process whose argv shows)."""
        return {"user": self.uid, "group": self.gid, "extra_groups": [], "cwd": self.home}


@contextlib.contextmanager
def os_user(prefix: str) -> Iterator[OSUser]:
    """A new user with a private home (mode 700), removed with its home afterwards."""
    if os.getuid() != 0:
        raise RuntimeError("Tests that prove OS-user boundaries run as root (as CI does).")
    name = f"{prefix}{secrets.token_hex(3)}"
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True, capture_output=True)
    try:
        entry = pwd.getpwnam(name)
        home = Path(entry.pw_dir)
        home.chmod(0o700)
        yield OSUser(name, entry.pw_uid, entry.pw_gid, home)
    finally:
        subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
        subprocess.run(["userdel", "-r", name], capture_output=True)


def shared_python(root: Path) -> Path:
    """A Python every user can run, seeing this checkout's installed packages."""
    if not SYSTEM_PYTHON.exists():
        raise RuntimeError(f"{SYSTEM_PYTHON} is missing: install Debian's python3 "
                           "(apt-get install -y python3) for the OS-user boundary tests.")
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    venv = root / "venv"
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(venv)], check=True)
    site_packages = sysconfig.get_paths()["purelib"]
    pth = venv / "lib" / "python3.11" / "site-packages" / "_jupyter_secrets_checkout.pth"
    pth.write_text(f"import site; site.addsitedir({site_packages!r})\n")
    python = venv / "bin" / "python"
    assert sys.version_info[:2] == (3, 11), "the shared venv reuses this venv's 3.11 wheels"
    return python
