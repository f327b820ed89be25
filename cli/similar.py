"""`tasveer similar TASK_ID`: the task's most similar photos in its Label Studio project, nearest
first, with what is known of each: a person's label, the serving model's prediction and its
confidence. Asked of the ML backend (GET /projects/<id>/tasks/<task>/similar), which compares the
embeddings it already has of every predicted task (cosine similarity: 1 is the same picture).

A photo not predicted yet is not in the collection: the backend says so (404)."""

from __future__ import annotations

import argparse
import json

from cli.backendapi import BackendAPIError, add_backend_options, call, login, resolve
from cli.common import fail

VERB = "similar"


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        VERB,
        help="a task's most similar photos in its project (label, prediction, confidence)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("task", type=int, metavar="TASK_ID", help="the Label Studio task id")
    p.add_argument("--k", type=int, default=8, help="how many neighbours (1 to 100, default 8)")
    add_backend_options(p)
    p.set_defaults(func=run)
    return p


def row(item: dict, rank: str, similarity: str) -> str:
    conf = item.get("confidence")
    return (
        f"{rank:>4}  {item['task']:>8}  {similarity:>10}  {item.get('label') or '-':<14}"
        f"{item.get('predicted') or '-':<14}{(f'{conf:.1%}' if conf is not None else '-'):>10}"
    )


def table(body: dict) -> list[str]:
    """The answer as lines: the query first, then its neighbours, nearest first."""
    lines = [
        f"task {body['query']['task']} of project {body['project']}: its {len(body['neighbours'])} most similar "
        f"photos of {body['collection']} (model {body['version'] or 'none yet'})",
        f"{'rank':>4}  {'task':>8}  {'similarity':>10}  {'label':<14}{'prediction':<14}{'confidence':>10}",
        row(body["query"], "-", "(this one)"),
    ]
    lines += [row(n, str(i), f"{n['similarity']:.3f}") for i, n in enumerate(body["neighbours"], 1)]
    if body.get("missing"):
        lines.append(f"({body['missing']} tasks not predicted yet are not compared)")
    return lines


def run(args) -> int:
    if not 1 <= args.k <= 100:
        return fail(VERB, f"--k must be from 1 to 100; got {args.k}")
    try:
        url, project = resolve(args)
        body = call(
            "GET", f"{url}/projects/{project}/tasks/{args.task}/similar", login(args, url), params={"k": args.k}
        )
    except BackendAPIError as exc:
        return fail(VERB, str(exc))
    if args.json:
        print(json.dumps(body))
        return 0
    print("\n".join(table(body)))
    return 0
