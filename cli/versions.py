"""`tasveer versions`: a project's model versions, which serves, which are candidates."""

from __future__ import annotations

import argparse
import json

from cli.backendapi import BackendAPIError, add_backend_options, call, login, resolve
from cli.common import fail


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "versions",
        help="list a project's model versions (accuracy, which serves, candidates)",
        description="List the project's model versions as the ML backend has them.",
    )
    add_backend_options(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    try:
        url, project = resolve(args)
        body = call("GET", f"{url}/versions", login(args, url), params={"project": project})
    except BackendAPIError as exc:
        return fail("versions", str(exc))
    if args.json:
        print(json.dumps(body))
        return 0
    print(f"{'version':<9}{'mode':<10}{'labels':>7}{'accuracy':>10}{'macro F1':>10}  status")
    for v in body["details"]:
        acc, f1 = v.get("accuracy"), v.get("macro_f1")
        status = (
            "serving"
            if v["version"] == body["model_version"]
            else ("candidate" if str(v.get("promotion") or "").startswith("candidate") else "")
        )
        print(
            f"{v['version']:<9}{v.get('mode') or '':<10}{v.get('n_train') or 0:>7}"
            f"{(f'{acc:.1%}' if acc is not None else '-'):>10}{(f'{f1:.3f}' if f1 is not None else '-'):>10}  {status}"
        )
    if not body["details"]:
        print(f"no version yet; serving {body['model_version']}")
    return 0
