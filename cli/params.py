"""`tasveer params`: show or change a project's training parameters (the same ones as Label Studio's
"extra params" of the ML backend; both show a value set in either place)."""

from __future__ import annotations

import argparse
import json

from cli.backendapi import BackendAPIError, add_backend_options, call, login, resolve
from cli.common import fail


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "params",
        help="show or set a project's training parameters",
        description="Without --set: print the project's parameters (those set, and the "
        "effective values). --set KEY=VALUE (repeatable; VALUE is JSON, else a "
        "string) changes them, validated by the backend; --unset KEY goes back "
        "to the default.",
    )
    add_backend_options(p)
    p.add_argument(
        "--set",
        dest="changes",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help='e.g. --set mode=finetune --set lr=0.0005 --set acquisition=\\"diverse\\"',
    )
    p.add_argument("--unset", action="append", default=[], metavar="KEY", help="remove a parameter")
    p.set_defaults(func=run)
    return p


def parse_change(text: str) -> tuple[str, object]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise BackendAPIError(f"--set takes KEY=VALUE; got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def run(args) -> int:
    try:
        url, project = resolve(args)
        auth = login(args, url)
        body = call("GET", f"{url}/projects/{project}/params", auth)
        if args.changes or args.unset:
            values = dict(body["params"])
            values.update(parse_change(c) for c in args.changes)
            for key in args.unset:
                values.pop(key, None)
            body = call("PUT", f"{url}/projects/{project}/params", auth, json=values)
    except BackendAPIError as exc:
        return fail("params", str(exc))
    if args.json:
        print(json.dumps(body))
        return 0
    for key, value in body["effective"].items():
        mark = "*" if key in body["params"] else " "
        print(f"{mark} {key:<18}{json.dumps(value)}")
    print("(* = set for this project; the others are defaults)")
    return 0
