"""`tasveer simulate`: replay active learning on a labelled class-per-folder tree.

Labels of the --pool photos are hidden and revealed batch by batch in the order a strategy asks
for them; after every batch the head is retrained and scored on --test. Without --test, 20 % of
every class of --pool is held out (chosen by --seed) and the rest is the pool.

The head is the one a project trains by default: the same backbone, C and semi-supervised fit
(the photos of the pool not yet labeled are its unlabeled tasks), so the figures say what a
project's labeler would see. --model, --head-c and --unlabeled change it as a project's training
parameters would.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli import common
from cli.common import default_cache

VERB = "simulate"


def fail(message: str) -> int:
    return common.fail(VERB, message)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        VERB,
        help="replay active learning on labelled photos and report accuracy per round",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_photos(p)
    _add_rounds(p)
    _add_head(p)
    _add_output(p)
    p.set_defaults(func=run)


def _add_photos(p: argparse.ArgumentParser) -> None:
    """Where the photos come from and where embeddings are cached."""
    p.add_argument(
        "--pool", required=True, type=Path, help="class-per-folder tree whose labels are revealed batch by batch"
    )
    p.add_argument(
        "--test",
        type=Path,
        default=None,
        help="class-per-folder tree to measure accuracy on (default: hold out 20%% of "
        "every class of --pool, chosen by --seed)",
    )
    p.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="embedding cache directory (default $TASVEER_CACHE or ~/.cache/tasveer)",
    )


def _add_rounds(p: argparse.ArgumentParser) -> None:
    """Which photos are revealed, how many, how often and under which seeds."""
    from training.acquisition import DEFAULT_STRATEGY, STRATEGIES

    p.add_argument(
        "--strategy",
        default=DEFAULT_STRATEGY,
        help=f"which photos to label next: {', '.join(STRATEGIES)} (default {DEFAULT_STRATEGY})",
    )
    p.add_argument(
        "--initial",
        type=int,
        default=60,
        help="labels revealed before the first round (k-means medoids; random for --strategy random) (default 60)",
    )
    p.add_argument("--batch", type=int, default=60, help="labels revealed per round (default 60)")
    p.add_argument("--rounds", type=int, default=8, help="number of rounds (default 8)")
    p.add_argument("--seed", type=int, default=0, help="first random seed (default 0)")
    p.add_argument(
        "--repeats", type=int, default=1, help="run with seeds SEED .. SEED+K-1 and report mean and spread (default 1)"
    )


def _add_head(p: argparse.ArgumentParser) -> None:
    """The head retrained every round: a project's defaults unless changed."""
    from training.params import TrainParams

    default = TrainParams()
    p.add_argument(
        "--mode", default="head", help="training mode; only 'head' (linear head on cached embeddings) is supported"
    )
    p.add_argument(
        "--model",
        default=default.model,
        help=f"backbone whose embeddings the head reads (default {default.model}, a project's default)",
    )
    p.add_argument(
        "--head-c",
        type=float,
        default=default.head_c,
        help=f"inverse L2 strength of the head (default {default.head_c}, a project's default)",
    )
    p.add_argument(
        "--unlabeled",
        type=int,
        default=default.unlabeled,
        help=f"at most this many not-yet-labeled pool photos join each fit as unlabeled tasks "
        f"(semi-supervised, as in a project; default {default.unlabeled}; 0 = labels only)",
    )


def _add_output(p: argparse.ArgumentParser) -> None:
    """What is reported besides accuracy, and in which form."""
    p.add_argument(
        "--duplicates",
        choices=("count", "skip"),
        default=None,
        help="find near-duplicate groups in --pool (as a project does) and count, per round, the photos "
        "served although a duplicate was labeled before ('count'), or never serve them: one label per "
        "group, the others labeled like it for free ('skip', as tasveer's queue and 'label these like "
        "this one' do)",
    )
    p.add_argument(
        "--auto-accept",
        type=float,
        default=None,
        metavar="TARGET",
        help="also report, per round, the share of --test photos the auto-accept rule takes at "
        "this target accuracy (e.g. 0.98) and their realised accuracy",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='print one JSON object {"strategy", "rounds": [{"labels", "accuracy", "spread"}]}',
    )


def _check(args) -> str | None:
    from training.acquisition import STRATEGIES

    if args.mode != "head":
        return f"--mode {args.mode!r} is not supported; simulation retrains many times, so only 'head' mode is"
    if args.strategy not in STRATEGIES:
        return f"unknown strategy {args.strategy!r}; use one of {', '.join(STRATEGIES)}"
    for name in ("initial", "batch", "repeats"):
        if getattr(args, name) < 1:
            return f"--{name} must be at least 1; got {getattr(args, name)}"
    if args.rounds < 0:
        return f"--rounds must not be negative; got {args.rounds}"
    if args.unlabeled < 0:
        return f"--unlabeled must not be negative; got {args.unlabeled}"
    if not args.head_c > 0:
        return f"--head-c must be positive; got {args.head_c}"
    if args.auto_accept is not None and not 0.5 <= args.auto_accept < 1:
        return f"--auto-accept is a target accuracy in [0.5, 1); got {args.auto_accept}"
    for name in ("pool", "test"):
        path = getattr(args, name)
        if path is not None and not path.is_dir():
            return f"--{name} {path}: not a directory"
    return None


def run(args) -> int:
    problem = _check(args)
    if problem:
        return fail(problem)
    from training.data import stratified_split
    from training.dupserving import pool_groups
    from training.params import ParamError, TrainParams
    from training.simulate import embed_folder, project_head, simulate_repeats
    from training.train import backbone_for

    cache = args.cache or default_cache()
    try:
        backbone = backbone_for(TrainParams.from_dict({"model": args.model}))
    except (ParamError, ValueError) as exc:
        return fail(str(exc))
    try:
        X, y, names, paths = embed_folder(args.pool, cache, backbone=backbone)
        if args.test is None:
            rest, held = stratified_split(y.tolist(), 0.2, args.seed)
            pool_X, pool_y, test_X, test_y = X[rest], y[rest], X[held], y[held]
            paths = [paths[i] for i in rest]
        else:
            pool_X, pool_y = X, y
            test_X, test_y, test_names, _ = embed_folder(args.test, cache, backbone=backbone)
            if test_names != names:
                return fail(f"--test classes {test_names} differ from --pool classes {names}")
        groups = pool_groups(pool_X, paths) if args.duplicates else None
        result = simulate_repeats(
            pool_X,
            pool_y,
            test_X,
            test_y,
            names,
            strategy=args.strategy,
            repeats=args.repeats,
            seed=args.seed,
            initial=args.initial,
            batch=args.batch,
            rounds=args.rounds,
            head_c=args.head_c,
            auto_accept=args.auto_accept,
            head=project_head(args.unlabeled),
            groups=groups,
            skip_duplicates=args.duplicates == "skip",
        )
    except (OSError, ValueError) as exc:
        return fail(str(exc))
    if groups is not None:
        result["duplicate_groups"] = len(groups)
    if args.json:
        print(json.dumps(result))
        return 0
    _print_table(args, result, len(pool_y), len(test_y), groups)
    return 0


def _print_table(args, result: dict, n_pool: int, n_test: int, groups) -> None:
    """The readable answer: one row per round."""
    print(
        f"strategy {result['strategy']}: pool {n_pool}, test {n_test}, "
        f"{args.repeats} seed(s); head on {args.model}, C {args.head_c}, "
        f"{f'up to {args.unlabeled} unlabeled photos' if args.unlabeled else 'labels only'}"
    )
    auto = args.auto_accept is not None
    dups = groups is not None
    if groups is not None:
        how = "never served: one label per group" if args.duplicates == "skip" else "served like any photo"
        print(f"{len(groups)} near-duplicate groups in the pool ({sum(map(len, groups))} photos), {how}")
    head = f"{'labels':>7}  {'accuracy':>8}  {'spread':>6}" + ("  duplicates served" if dups else "")
    print(head + ("  auto-accepted  their accuracy" if auto else ""))
    for r in result["rounds"]:
        extra = f"  {r['duplicates_served']:>17.1f}" if dups else ""
        if auto:
            prec = r["auto_precision"]
            extra += f"  {r['auto_coverage']:>13.1%}  {(f'{prec:.1%}' if prec is not None else '-'):>14}"
        print(f"{r['labels']:>7}  {r['accuracy']:>8.1%}  {r['spread']:>6.1%}{extra}")
