"""`tasveer deploy`: a project's production version, the one applications get from the backend's
`/projects/<id>/classify` (and `tasveer export --backend`). Labeling's serving version moves with
every training; production moves only here or by the model page's "deploy to production"."""

from __future__ import annotations

import argparse
import getpass
import json

from cli.backendapi import BackendAPIError, add_backend_options, call, login, resolve
from cli.common import fail

USER_HEADER = "X-Tasveer-User"  # who deploys: the backend records it (backend/api/keyguard.py)

DESCRIPTION = """\
Set the project's production version: what /projects/<id>/classify answers with, whatever labeling
trains meanwhile. Without VERSION: show the production version and its history (who deployed which
version when, with its metrics then). --rollback: back to the version deployed before. --new-key:
make the project's API key for /classify (printed once; the old key stops working)."""


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "deploy",
        help="set a project's production version (what /classify answers with), roll it back, or make an API key",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_backend_options(p)
    p.add_argument("version", nargs="?", metavar="VERSION", help="e.g. v0003 (see `tasveer versions`)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--rollback", action="store_true", help="production back to the version deployed before")
    what.add_argument("--new-key", action="store_true", help="make a new API key for /classify (printed once)")
    p.set_defaults(func=run)
    return p


def os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return "unknown"


def run(args) -> int:
    if args.version and (args.rollback or args.new_key):
        return fail("deploy", "give a VERSION, or --rollback, or --new-key: one of them")
    headers = {USER_HEADER: os_user()}
    try:
        url, project = resolve(args)
        base, auth = f"{url}/projects/{project}", login(args, url)
        if args.new_key:
            body = call("POST", f"{base}/api-key", auth, json={}, headers=headers)
        elif args.rollback:
            body = call("POST", f"{base}/production/rollback", auth, json={}, headers=headers)
        elif args.version:
            body = call("POST", f"{base}/production", auth, json={"version": args.version}, headers=headers)
        else:
            body = call("GET", f"{base}/production", auth)
    except BackendAPIError as exc:
        return fail("deploy", str(exc))
    print(json.dumps(body) if args.json else describe(project, body))
    return 0


def describe(project: int, body: dict) -> str:
    if "key" in body:
        return (
            f"project {project}: new API key (shown this once; the old one no longer works):\n  {body['key']}\n"
            f"send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`"
        )
    if "entry" in body:
        entry = body["entry"]
        verb = "rolled back to" if entry.get("rollback") else "is now"
        was = f" (was {entry['previous']})" if entry.get("previous") else ""
        return f"project {project}: production {verb} {body['production']}{was}"
    lines = [
        f"project {project}: production {body.get('production') or 'not set (run `tasveer deploy VERSION`)'}; "
        f"labeling serves {body.get('serving') or 'nothing yet'}"
    ]
    for e in reversed(body.get("history") or []):
        acc = (e.get("metrics") or {}).get("accuracy")
        lines.append(
            f"  {str(e.get('at'))[:19].replace('T', ' ')}  {e.get('version')}"
            f"{' (rollback)' if e.get('rollback') else ''}  by {e.get('by')} via {e.get('via')}"
            f"  accuracy {f'{acc:.1%}' if acc is not None else '-'}"
        )
    return "\n".join(lines)
