"""`tasveer promote`: serve a version (a candidate, or an older one: rollback)."""

from __future__ import annotations

import argparse
import json

from cli.backendapi import BackendAPIError, add_backend_options, call, login, resolve
from cli.common import fail


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "promote",
        help="serve a model version (promote a candidate, or roll back)",
        description="Make VERSION the project's serving version; Label Studio's predictions "
        "and model_version follow it in the background.",
    )
    add_backend_options(p)
    p.add_argument("version", metavar="VERSION", help="e.g. v0003 (see `tasveer versions`)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    try:
        url, project = resolve(args)
        body = call("POST", f"{url}/projects/{project}/rollback", login(args, url), json={"version": args.version})
    except BackendAPIError as exc:
        return fail("promote", str(exc))
    print(json.dumps(body) if args.json else f"project {project} now serves {body['model_version']}")
    return 0
