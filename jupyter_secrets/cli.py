"""``jupyter secrets ...``: manage the store from a shell.

Reads the same settings as the server (``SecretsExtensionApp`` traits in
``jupyter_server_config``, then the ``JUPYTER_SECRETS_*`` environment), and works on
the same SQLite file while the server runs. Values come from stdin or a hidden prompt,
never from argv, where every user of the machine could read them in ``ps``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from jupyter_core.application import JupyterApp

from .boundary.sharing import SharedWith
from .errors import SecretsError
from .keys import generate_key_text
from .protocol import ADMIN_TOKEN_ENV, SERVICE_TOKEN_ENV, SERVICE_URL_ENV
from .remote import RemoteAdmin
from .runtime import SecretsRuntime, build_runtime
from .services.audit import AuditQuery
from .services.tokens import parse_ttl
from .settings import SecretsSettings
from .store.records import AuditRecord, SecretRecord
from .validation import PLACEMENTS, value_warnings

log = logging.getLogger("jupyter_secrets.cli")


class _ConfigLoader(JupyterApp):
    """Loads ``jupyter_server_config`` the way the server does, for the extension's traits."""

    name = "jupyter-secrets"
    config_file_name = "jupyter_server_config"


def _settings() -> SecretsSettings:
    """The settings the server reads: its config files' SecretsExtensionApp section."""
    loader = _ConfigLoader()
    loader.initialize([])
    return SecretsSettings.from_server_config(loader.config)


def _runtime() -> SecretsRuntime:
    """The same runtime the server builds, from the same configuration."""
    return build_runtime(_settings(), log=log)


def _actor() -> str:
    return getpass.getuser()


def _audit(runtime: SecretsRuntime, action: str, **fields: Any) -> None:
    """The CLI's changes are audited too, as the OS user, written at once."""
    runtime.audit.write_now(runtime.audit.event(action, user=_actor(), **fields))


class LocalAdmin:
    """The CLI's commands on the configured store, audited as the OS user."""

    def __init__(self) -> None:
        self.runtime = _runtime()

    def list_secrets(self, kind: str | None) -> list[SecretRecord]:
        return self.runtime.secrets.list(kind=kind)

    def upsert(self, name: str, value: str, fields: dict[str, Any]) -> SecretRecord:
        record = self.runtime.secrets.upsert(_actor(), name, value, **fields)
        _audit(self.runtime, "create" if record.version == 1 else "replace",
               secrets=[record.name])
        return record

    def update(self, name: str, fields: dict[str, Any]) -> SecretRecord:
        record = self.runtime.secrets.update_metadata(_actor(), name, fields)
        _audit(self.runtime, "metadata", secrets=[record.name])
        return record

    def delete(self, name: str) -> str:
        name = self.runtime.secrets.get(name).name
        self.runtime.secrets.delete(name)
        _audit(self.runtime, "delete", secrets=[name])
        return name

    def audit(self, query: AuditQuery) -> tuple[list[AuditRecord], int | None]:
        return self.runtime.audit.page(query)

    def create_run_token(self, name: str, ttl: str, user: str) -> tuple[str, dict[str, Any]]:
        token, record = self.runtime.tokens.mint("run", user, name=name, ttl=parse_ttl(ttl))
        _audit(self.runtime, "token_create", reason=f"run token {name} for {user}")
        return token, record.to_json()

    def list_run_tokens(self) -> list[dict[str, Any]]:
        return [t.to_json() for t in self.runtime.tokens.list(kind="run")]

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        record = self.runtime.tokens.revoke(token_id)
        _audit(self.runtime, "token_revoke",
               reason=f"{record.kind} token {record.name or ''} of {record.username}")
        return record.to_json()


def _admin(args: argparse.Namespace) -> LocalAdmin | RemoteAdmin:
    """The store the command works on: this machine's settings, or a secrets service."""
    service_url = args.service_url or os.environ.get(SERVICE_URL_ENV)
    return RemoteAdmin(service_url) if service_url else LocalAdmin()


def _read_value(keep_newline: bool) -> str:
    if sys.stdin is None or not sys.stdin.isatty():
        data = sys.stdin.read() if sys.stdin else ""
        if not keep_newline:
            data = data[:-2] if data.endswith("\r\n") else data.removesuffix("\n")
        return data
    first = getpass.getpass("Value (hidden): ")
    if getpass.getpass("Repeat value: ") != first:
        raise SecretsError("The two values differ; nothing was saved.")
    return first


def _when(stamp: str | None) -> str:
    """``2025-01-31 14:05`` in local time from a stored ISO time ("-" when never)."""
    if not stamp:
        return "-"
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def _shared(shared: SharedWith | None) -> str:
    if shared is None:
        return "everyone"
    return ", ".join([*(f"user:{u}" for u in shared.users),
                      *(f"group:{g}" for g in shared.groups)])


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]
    lines = [header, *rows]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True))
                     .rstrip() for line in lines)


def cmd_list(args: argparse.Namespace) -> int:
    records = _admin(args).list_secrets(None if args.all else "user")
    if args.json:
        print(json.dumps([r.to_json() for r in records], indent=2))
        return 0
    if not records:
        print("No secrets yet. Add one with: jupyter secrets set NAME")
        return 0
    rows = [(r.name, f"v{r.version}", r.kind, _when(r.updated_at), _when(r.last_used_at),
             ",".join(r.allowed_hosts) or "-", ",".join(r.placements),
             _shared(r.shared_with).replace(", ", ","), r.description)
            for r in records]
    print(_table(("NAME", "VERSION", "KIND", "UPDATED", "LAST USED", "ALLOWED HOSTS",
                  "PLACEMENTS", "SHARED WITH", "DESCRIPTION"), rows))
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    if args.value_on_argv is not None:
        raise SecretsError(
            "Values are never taken from the command line (other users can read it in ps "
            "and shell history). Pipe it on stdin (printenv KEY | jupyter secrets set "
            f"{args.name}) or type it at the hidden prompt (jupyter secrets set {args.name})."
        )
    value = _read_value(args.keep_newline)
    for warning in value_warnings(value):
        print(f"warning: {warning}", file=sys.stderr)
    record = _admin(args).upsert(args.name, value, {
        "description": args.description, "allowed_hosts": args.allowed_host,
        "placements": args.placement, "shared_with": args.share_with})
    print(f"Saved {record.name} (version {record.version}).")
    if not record.allowed_hosts:
        print(f"{record.name} has no allowed hosts: connections can use it, js.request cannot. "
              f"Add one with: jupyter secrets edit {record.name} --allowed-host HOST")
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    """Change a secret's description or allowed hosts; the value is left alone."""
    fields: dict[str, Any] = {}
    if args.description is not None:
        fields["description"] = args.description
    if args.no_allowed_hosts:
        fields["allowed_hosts"] = []
    elif args.allowed_host is not None:
        fields["allowed_hosts"] = args.allowed_host
    if args.placement is not None:
        fields["placements"] = args.placement
    if args.share_with is not None:
        fields["shared_with"] = args.share_with
    if not fields:
        raise SecretsError("Nothing to change: give --description, --allowed-host, "
                           "--no-allowed-hosts, --placement or --share-with.")
    record = _admin(args).update(args.name, fields)
    shown = {
        "description": repr(record.description),
        "allowed_hosts": ", ".join(record.allowed_hosts) or "none (connections only)",
        "placements": ", ".join(record.placements),
        "shared_with": _shared(record.shared_with),
    }
    changes = "; ".join(f"{k.replace('_', ' ')} {shown[k]}" for k in fields)
    print(f"Updated {record.name}: {changes}.")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    name = _admin(args).delete(args.name)
    print(f"Deleted {name}.")
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    from .rotation import rotate

    runtime = _runtime()
    result = rotate(runtime, force=args.force, wait_s=args.wait)
    _audit(runtime, "rotate_key", reason=f"re-wrapped {result.rewrapped} data key(s) under "
           f"master key {result.primary}")
    print(f"Re-wrapped {result.rewrapped} data key(s) under master key {result.primary}.")
    if result.dropped:
        print(f"Removed key(s) {', '.join(result.dropped)} from {runtime.keys.key_file}: "
              "no secret needs them any more.")
    for note in result.notes:
        print(note)
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    """Report (and with --redact, replace) stored values found in files: names only."""
    from pathlib import Path

    root = Path(args.path)
    if not root.exists():
        raise SecretsError(f"Nothing at {root}.")
    index = _runtime().values
    found = 0
    for path, redaction in index.scan_tree(root, redact=args.redact):
        found += 1
        counts = ", ".join(f"{name} x{n}" for name, n in sorted(redaction.found.items()))
        print(f"{path}: {counts}{' (redacted)' if args.redact else ''}")
    if not found:
        print(f"No stored secret value found under {root}.")
    return 1 if found and not args.redact else 0


def cmd_audit(args: argparse.Namespace) -> int:
    query = AuditQuery.parse({"secret": args.secret, "user": args.user, "since": args.since,
                              "action": args.action, "limit": args.limit,
                              "before": args.before})
    events, next_id = _admin(args).audit(query)
    if args.json:
        print(json.dumps({"events": [e.to_json() for e in events], "next": next_id}, indent=2))
        return 0
    if not events:
        print("No audit events match.")
        return 0
    for e in events:
        where = " ".join(x for x in (
            f"[{e.connection}]" if e.connection else "", e.method or "",
            f"{e.host or ''}{e.path or ''}", "" if e.status is None else str(e.status),
            "" if e.bytes is None else f"{e.bytes}B",
            "" if e.duration_ms is None else f"{e.duration_ms:.0f}ms",
            f"kernel={e.kernel_id}" if e.kernel_id else "",
            f"notebook={e.notebook_path}" if e.notebook_path else "",
        ) if x)
        reason = f"  ({e.reason})" if e.reason else ""
        print(f"{e.id:>6}  {e.time}  {e.user}  {e.action}  {','.join(e.secrets) or '-'}  "
              f"{where}{reason}".rstrip())
    if next_id is not None:
        print(f"More: add --before {next_id}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Copy this store into a PostgreSQL store, values re-sealed under the destination's key."""
    from .protocol import TARGET_KEY_ENV
    from .services.transfer import target_keyring, transfer
    from .store import open_store

    keyring = target_keyring(os.environ.get(TARGET_KEY_ENV), args.target_key_file, log)
    runtime = _runtime()
    source = runtime.secrets.store
    target = open_store(args.to)
    try:
        result = transfer(source, runtime.secrets.keyring, target, keyring, merge=args.merge,
                          actor=_actor())
    finally:
        target.close()
    copied = (f"{len(result.secrets)} secret(s), {len(result.connections)} connection(s) and "
              f"{result.audit_events} audit event(s)")
    _audit(runtime, "migrate", reason=f"copied {copied} to {target.location}")
    print(f"Copied {copied} from {source.location} to {target.location}, values sealed under "
          f"master key {result.key_id}.")
    print(f"{source.location} is unchanged. Start the service with JUPYTER_SECRETS_STORE_URL="
          f"{target.location} and that master key in JUPYTER_SECRETS_KEY.")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the secrets service until SIGTERM/SIGINT."""
    import asyncio

    from .service.app import ServiceConfig, serve

    settings = _settings()
    hub_url = urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL", ""))
    config = ServiceConfig(
        ip=args.ip or hub_url.hostname or "127.0.0.1",
        port=args.port or hub_url.port or 8877,
        base_url=args.base_url or os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/"),
        admin_token=os.environ.get(ADMIN_TOKEN_ENV),
        allow_origins=settings.service_allow_origins,
    )
    logging.getLogger().setLevel(logging.INFO)
    asyncio.run(serve(settings, config))
    return 0


def cmd_server_token(args: argparse.Namespace) -> int:
    """Credentials for users' Jupyter servers in client mode (on the service's host)."""
    tokens = _runtime().tokens
    if args.action == "create":
        if not args.user:
            raise SecretsError("Name the user whose server this is: --user NAME.")
        token, _ = tokens.mint("server", args.user, name=args.name)
        print(token)
        print(f"Give it to {args.user}'s Jupyter server as {SERVICE_TOKEN_ENV} (or "
              "c.SecretsExtensionApp.service_token). It mints kernel tokens and uses secrets "
              "by name as that user; it cannot manage secrets.", file=sys.stderr)
        return 0
    if args.action == "revoke":
        if not args.id:
            raise SecretsError("Say which token: jupyter secrets server-token revoke ID "
                               "(the ID column of server-token list).")
        record = tokens.revoke(args.id)
        print(f"Revoked {record.digest[:16]} ({record.username}).")
        return 0
    rows = [(t.digest[:16], t.username, t.name or "-", _when(t.created_at),
             _when(t.last_used_at), "revoked" if t.revoked_at else "live")
            for t in tokens.list(kind="server")]
    print(_table(("ID", "USER", "NAME", "CREATED", "LAST USED", "STATE"), rows)
          if rows else "No server tokens yet. Make one with: jupyter secrets server-token "
          "create --user NAME")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """Run tokens: use-only credentials for papermill, nbclient, scheduled jobs."""
    admin = _admin(args)
    if args.action == "create":
        if not args.name or not args.ttl:
            raise SecretsError("Give the token a --name (like nightly) and a --ttl (like 8h).")
        token, record = admin.create_run_token(args.name, args.ttl, args.user or _actor())
        print(token)
        print(f"Run token {record['name']} for {record['username']}, id {record['id']}, "
              f"expires {_when(record['expires_at'])}. Give the run JUPYTER_SECRETS_URL and "
              "JUPYTER_SECRETS_TOKEN=<the token>; it can use secrets by name, nothing more.",
              file=sys.stderr)
        return 0
    if args.action == "revoke":
        if not args.id:
            raise SecretsError("Say which token: jupyter secrets token revoke ID "
                               "(the ID column of jupyter secrets token list).")
        record = admin.revoke_token(args.id)
        print(f"Revoked {record['id']} ({record['name'] or record['kind']}, "
              f"{record['username']}).")
        return 0
    rows = [(t["id"], t["username"], t["name"] or "-", _when(t["created_at"]),
             _when(t["expires_at"]), _when(t["last_used_at"]),
             "revoked" if t["revoked_at"] else "live") for t in admin.list_run_tokens()]
    print(_table(("ID", "USER", "NAME", "CREATED", "EXPIRES", "LAST USED", "STATE"), rows)
          if rows else "No run tokens. Make one with: jupyter secrets token create --name "
          "nightly --ttl 8h")
    return 0


def cmd_generate_key(args: argparse.Namespace) -> int:
    print(generate_key_text())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyter secrets", description="Manage workspace secrets (values are write-only)."
    )
    parser.add_argument(
        "--service-url", metavar="URL",
        help="manage the secrets of this secrets service instead of the local store (admin "
        f"token from ${ADMIN_TOKEN_ENV}; default ${SERVICE_URL_ENV}); list, set, edit, "
        "delete and audit")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list secret names and metadata (never values)")
    p.add_argument("--all", action="store_true", help="include system secrets")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("set", help="create or replace a secret; value from stdin or a prompt")
    p.add_argument("name")
    p.add_argument("value_on_argv", nargs="?", metavar="(no value here)",
                   help=argparse.SUPPRESS)
    p.add_argument("--description")
    p.add_argument("--allowed-host", action="append", metavar="HOST",
                   help="a host this secret may be sent to (repeatable)")
    p.add_argument("--placement", action="append", choices=PLACEMENTS,
                   help="where in a request the value may go (repeatable; default: header)")
    p.add_argument("--share-with", action="append", metavar="WHO",
                   help="who may use it besides admins: user:NAME or group:NAME (repeatable), "
                   "or everyone (the default)")
    p.add_argument("--keep-newline", action="store_true",
                   help="keep a trailing newline read from stdin (stripped by default)")
    p.set_defaults(func=cmd_set)

    p = sub.add_parser("edit", help="change a secret's description or allowed hosts")
    p.add_argument("name")
    p.add_argument("--description")
    p.add_argument("--allowed-host", action="append", metavar="HOST",
                   help="replace the allowed hosts with these (repeatable)")
    p.add_argument("--no-allowed-hosts", action="store_true",
                   help="allow no host (the secret then works through connections only)")
    p.add_argument("--placement", action="append", choices=PLACEMENTS,
                   help="replace where in a request the value may go (repeatable)")
    p.add_argument("--share-with", action="append", metavar="WHO",
                   help="who may use it besides admins: user:NAME or group:NAME (repeatable), "
                   "or everyone (the default)")
    p.set_defaults(func=cmd_edit)

    p = sub.add_parser("delete", help="delete a secret")
    p.add_argument("name")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser(
        "rotate-key", help="re-wrap every data key under a new master key (key file: a new "
        "key is made; JUPYTER_SECRETS_KEY: its first key), checking running servers first")
    p.add_argument("--force", action="store_true",
                   help="rotate even if a running server would be left without the new key")
    p.add_argument("--wait", type=float, default=15.0, metavar="SECONDS",
                   help="how long to wait for running servers to load a new key file")
    p.set_defaults(func=cmd_rotate)

    p = sub.add_parser("scan", help="find stored values in files (names only); --redact "
                       "replaces them with [REDACTED:NAME]")
    p.add_argument("path", help="a file or folder (.ipynb and text files)")
    p.add_argument("--redact", action="store_true", help="rewrite the files that hold values")
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("audit", help="show the audit log, newest first (never values)")
    p.add_argument("--secret", metavar="NAME", help="events about this secret")
    p.add_argument("--user", metavar="U", help="events by this user")
    p.add_argument("--action", help="one action, like proxy_call or refused_call")
    p.add_argument("--since", metavar="ISO", help="from this date or time (UTC unless given)")
    p.add_argument("--limit", metavar="N", default=None, help="at most N events (default 100)")
    p.add_argument("--before", metavar="ID", default=None, help="events older than this id")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser(
        "migrate", help="copy this store (secrets, connections, audit log) into a PostgreSQL "
        "store, every value re-sealed under the destination's master key",
        description="Copy every secret (re-sealed under the destination's master key; versions, "
        "owners and times kept), connection and audit event of the configured store into a "
        "PostgreSQL store, in one transaction: all or nothing. Values are opened with the "
        "current settings' key (JUPYTER_SECRETS_KEY or the key file) and sealed with the "
        "destination's: JUPYTER_SECRETS_TARGET_KEY (same form as JUPYTER_SECRETS_KEY, first "
        "key seals) or --target-key-file. No value is ever printed. Stop the servers using "
        "this store first: changes made after the copy stay behind.")
    p.add_argument("--to", required=True, metavar="URL",
                   help="the destination, postgresql://user@host:port/dbname (keep the password "
                   "out of the command line, where ps shows it: use PGPASSWORD or ~/.pgpass)")
    p.add_argument("--target-key-file", metavar="PATH",
                   help="file holding the destination's master key (mode 0600), instead of "
                   "JUPYTER_SECRETS_TARGET_KEY")
    p.add_argument("--merge", action="store_true",
                   help="add to a destination that already holds secrets or connections "
                   "(a name both hold is refused)")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("serve", help="run the secrets service (the same API, its own process)")
    p.add_argument("--ip", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default 8877)")
    p.add_argument("--base-url", help="URL prefix, like /services/secrets/ (default /)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("server-token", help="credentials for users' Jupyter servers in "
                       "client mode: create --user NAME, list, revoke ID")
    p.add_argument("action", choices=("create", "list", "revoke"))
    p.add_argument("id", nargs="?", help="the token to revoke (its ID in the list)")
    p.add_argument("--user", help="whose Jupyter server the token is for")
    p.add_argument("--name", help="a label, like the server's host")
    p.set_defaults(func=cmd_server_token)

    p = sub.add_parser("token", help="run tokens for headless runs (papermill, jobs): "
                       "create --name N --ttl 8h [--user U], list, revoke ID")
    p.add_argument("action", choices=("create", "list", "revoke"))
    p.add_argument("id", nargs="?", help="the token to revoke (its ID in the list)")
    p.add_argument("--name", help="a label, like nightly")
    p.add_argument("--ttl", help="how long it lives: 30m, 8h, 7d (at most 90 days)")
    p.add_argument("--user", help="whose secrets it uses (default: you)")
    p.set_defaults(func=cmd_token)

    p = sub.add_parser("generate-key", help="print a new random master key")
    p.set_defaults(func=cmd_generate_key)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SecretsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; nothing was saved.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
