"""`tasveer label-errors`: rank suspected wrong labels in a class-per-folder tree.

Every photo is judged by a linear head trained on the other folds only (out-of-fold), so a wrong
label cannot vouch for itself; a photo is listed when that head is confidently sure of another
label (per-label thresholds, see training/labelerrors.py). Strongest suspicion first.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli import common
from cli.common import default_cache

VERB = "label-errors"


def fail(message: str) -> int:
    return common.fail(VERB, message)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        VERB,
        help="rank suspected wrong labels in a class-per-folder tree",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", required=True, type=Path, help="directory with one sub-folder per class")
    p.add_argument("--top", type=int, default=20, help="show at most K suspects (default 20; 0 = all)")
    p.add_argument(
        "--head-c",
        type=float,
        default=0.002,
        help="inverse L2 strength of the head (default 0.002, tuned for the Lite0 embeddings used here)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the cross-validation folds (default 0)")
    p.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="embedding cache directory (default $TASVEER_CACHE or ~/.cache/tasveer)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='print one JSON object {"data", "n", "suspects": [{"path", "given", '
        '"suggested", "confidence", "given_prob", "strength"}]}',
    )
    p.set_defaults(func=run)


def run(args) -> int:
    if args.top < 0:
        return fail(f"--top must not be negative; got {args.top}")
    if not args.data.is_dir():
        return fail(f"--data {args.data}: not a directory")
    from training.labelerrors import find_label_errors
    from training.simulate import embed_folder

    try:
        X, y, names, paths = embed_folder(args.data, args.cache or default_cache())
        found = find_label_errors(X, y, names, head_c=args.head_c, seed=args.seed)
    except (OSError, ValueError) as exc:
        return fail(str(exc))
    shown = found[: args.top] if args.top else found
    suspects = [{"path": str(paths[s["index"]]), **{k: v for k, v in s.items() if k != "index"}} for s in shown]
    if args.json:
        print(json.dumps({"data": str(args.data), "n": len(y), "flagged": len(found), "suspects": suspects}))
        return 0
    print(f"{len(found)} of {len(y)} labels look wrong; showing {len(suspects)}, strongest first")
    for s in suspects:
        print(f"{s['confidence']:6.1%}  {s['given']} -> {s['suggested']}  {s['path']}")
    return 0
