"""Active learning on the shared scene photos: test accuracy against labels spent, per strategy,
and how well out-of-fold label checking finds flipped labels.

    .venv/bin/python bench/active_learning.py            # every strategy, 3 seeds, 60 + 8 x 60
    .venv/bin/python bench/active_learning.py --quick    # 2 strategies, 1 seed, 3 rounds of 30 (< 1 min warm)
    .venv/bin/python bench/active_learning.py --strategies random,margin --batch 10 --rounds 48 \
        --random-batch 60 --until 240 --seeds 20       # the product's cadence (batches of 10) against random

For each seed, 20 % of every class is held out as the test set (training.data.stratified_split,
as in bench/accuracy.py) and the rest is the pool whose labels are revealed batch by batch;
the head is the one a project trains by default (training.simulate.project_head: the default
backbone and C, semi-supervised over up to 2,000 of the pool's not-yet-labeled photos; `--unlabeled 0`
for the supervised head alone). Label noise: a 1,200-photo
labelled set drawn from the pool by seed with 5 % of its labels flipped to another class; we
report the precision of the top-k suspects for k = number flipped, and the recall of all suspects.
Embeddings are cached in bench/out/cache (or $TASVEER_CACHE): the first run embeds 8,741 photos
(about 10 minutes on 2 cores), reruns take seconds. Prints a markdown table and writes
bench/out/active_learning.{json,png} (active_learning_quick.* with --quick) and, in full
mode, docs/img/active_learning.png.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.acquisition import DEFAULT_STRATEGY, STRATEGIES  # noqa: E402
from training.data import balanced_sample, stratified_split  # noqa: E402
from training.labelerrors import find_label_errors  # noqa: E402
from training.params import TrainParams  # noqa: E402
from training.simulate import embed_folder, project_head, simulate, summarise  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TASVEER_SHARED") or REPO.parent / "shared") / "data" / "intel-scenes" / "train"
OUT = REPO / "bench" / "out"
DEFAULT = TrainParams()  # a project's head: the benchmark measures what a labeler gets


def noise_experiment(X, y, names, n_set: int, fraction: float, seed: int, head_c: float) -> dict:
    rng = np.random.default_rng(seed)
    pick = np.array(balanced_sample(y.tolist(), n_set, seed))
    given = y[pick].copy()
    flipped = rng.choice(len(pick), size=int(round(fraction * len(pick))), replace=False)
    for i in flipped:
        given[i] = rng.choice([c for c in range(len(names)) if c != given[i]])
    found = find_label_errors(X[pick], given, names, head_c=head_c, seed=seed)
    k = len(flipped)
    truth = set(flipped.tolist())
    top = [s["index"] for s in found[:k]]
    return {
        "seed": seed,
        "n": len(pick),
        "flipped": k,
        "flagged": len(found),
        "precision_at_k": sum(i in truth for i in top) / k,
        "recall": sum(s["index"] in truth for s in found) / k,
    }


def ort_backbone(name: str):
    """`name` as an ONNX Runtime backbone (same embeddings and cache keys as PyTorch, 2-3x faster)."""
    import tempfile

    from training.backbones import create_backbone
    from training.onnx_export import ensure_backbone_onnx
    from training.ort import OrtBackbone

    torch_backbone = create_backbone(name)
    path = ensure_backbone_onnx(Path(tempfile.mkdtemp()), torch_backbone)
    return OrtBackbone(path, torch_backbone.spec(), torch_backbone.id)


def plan(strategy: str, args) -> tuple[int, int]:
    """(batch, rounds) of one strategy: random at --random-batch up to the protocol's last label,
    the others at --batch, stopped at --until labels."""
    if strategy == "random":
        return args.random_batch, args.rounds * args.batch // args.random_batch
    rounds = args.rounds if args.until is None else min(args.rounds, (args.until - args.initial) // args.batch)
    return args.batch, rounds


def labels_to_reach(rounds: list[dict], target: float):
    return next((r["labels"] for r in rounds if r["accuracy"] >= target - 1e-9), None)


def plot(results: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.3), dpi=100)
    for res in results:
        n = np.array([r["labels"] for r in res["rounds"]])
        acc = np.array([r["accuracy"] for r in res["rounds"]]) * 100
        sd = np.array([r["spread"] for r in res["rounds"]]) * 100
        lw = 2.4 if res["strategy"] == DEFAULT_STRATEGY else 1.4
        ax.plot(n, acc, marker="o", ms=3, lw=lw, label=res["strategy"])
        ax.fill_between(n, acc - sd, acc + sd, alpha=0.15)
    base = next((r for r in results if r["strategy"] == "random"), None)
    if base:  # the target: what random sampling reaches with every label of the run
        ax.axhline(
            base["rounds"][-1]["accuracy"] * 100,
            color="grey",
            ls=":",
            lw=1,
            label=f"random's {base['rounds'][-1]['labels']}-label accuracy",
        )
    ax.set_xlabel("labels spent")
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 strategies, 1 seed, 3 rounds of 30, 600-photo pool")
    ap.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated strategies")
    ap.add_argument("--seeds", type=int, default=3, help="number of seeds (splits and strategy seeds)")
    ap.add_argument("--initial", type=int, default=60, help="labels before the first round")
    ap.add_argument("--batch", type=int, default=60, help="labels per round")
    ap.add_argument("--rounds", type=int, default=8, help="rounds")
    ap.add_argument(
        "--random-batch",
        type=int,
        default=None,
        help="random's labels per round (default "
        "--batch): its draws do not depend on it, only where it is measured; it still ends "
        "at --initial + --rounds x --batch labels",
    )
    ap.add_argument(
        "--until",
        type=int,
        default=None,
        help="stop every strategy but random at this many "
        "labels (random runs to the end: its final accuracy is the target)",
    )
    ap.add_argument("--head-c", type=float, default=DEFAULT.head_c, help="head inverse L2 strength")
    ap.add_argument(
        "--unlabeled",
        type=int,
        default=DEFAULT.unlabeled,
        help="not-yet-labeled pool photos in each fit (a project's semi-supervised head; 0 = the supervised head)",
    )
    ap.add_argument("--noise-set", type=int, default=1200, help="labelled set size for the noise test")
    ap.add_argument("--noise", type=float, default=0.05, help="fraction of its labels flipped")
    ap.add_argument("--no-docs", action="store_true", help="do not copy the plot to docs/img")
    ap.add_argument(
        "--docs-model", default=DEFAULT.model, help="the --model / --feats whose plot is copied to docs/img"
    )
    ap.add_argument(
        "--model",
        default=DEFAULT.model,
        help="offline backbone whose embeddings the head uses (embedded with ONNX Runtime)",
    )
    ap.add_argument(
        "--feats",
        default=None,
        help="instead of --model: a feature variant of "
        "bench/head_features.py (e.g. 'lite2+flip', 'lite0|lite2') read from bench/out/feats",
    )
    ap.add_argument(
        "--semi",
        default=None,
        help="a linear method of bench/semi_supervised.py (e.g. "
        "'self:0.5:0.3:1') as the head of every strategy, fitted on the labels and the rest of the pool",
    )
    ap.add_argument("--no-noise", action="store_true", help="skip the label-noise experiment")
    args = ap.parse_args()
    limit = None
    if args.quick:
        args.strategies, args.seeds = f"random,{DEFAULT_STRATEGY}", 1
        args.initial, args.batch, args.rounds, args.noise_set = 30, 30, 3, 300
        limit = 750  # 600 pool + 150 test
    args.random_batch = args.random_batch or args.batch
    if (args.rounds * args.batch) % args.random_batch:
        ap.error(f"--random-batch {args.random_batch} must divide --rounds x --batch = {args.rounds * args.batch}")
    if args.until is not None and args.until < args.initial:
        ap.error(f"--until {args.until} must be at least --initial {args.initial}")
    strategies = args.strategies.split(",")
    bad = [s for s in strategies if s not in STRATEGIES]
    if bad:
        ap.error(f"unknown strategies {bad}; use {', '.join(STRATEGIES)}")

    cache = Path(os.environ.get("TASVEER_CACHE") or OUT / "cache")
    t0 = time.perf_counter()
    if args.feats:
        from head_features import FEATS, load_variant

        meta = json.loads((FEATS / "labels.json").read_text())
        names = meta["classes"]
        X, y = load_variant(FEATS, args.feats), np.array([names.index(lab) for lab in meta["labels"]])
        args.model = args.feats
    else:
        X, y, names, _ = embed_folder(DATA, cache, limit=limit, backbone=ort_backbone(args.model))
    print(f"{len(y)} photos, {len(names)} classes, embedded in {time.perf_counter() - t0:.1f}s", flush=True)

    head = project_head(args.unlabeled)
    if args.semi:
        from semi_supervised import linear_method

        def head(XL, yL, XU, n_classes, C, seed):
            Xp = np.vstack([XL, XU])
            yp = np.concatenate([yL, np.full(len(XU), -1)])
            return linear_method(
                args.semi, Xp, yp, np.arange(len(XL)), np.arange(len(XL), len(Xp)), n_classes, C, seed, {}
            )

    runs = {s: [] for s in strategies}
    seconds = {s: 0.0 for s in strategies}
    noise = []
    for seed in range(args.seeds):
        pool, test = stratified_split(y.tolist(), 0.2, seed)
        pool, test = np.array(pool), np.array(test)
        for s in strategies:
            t = time.perf_counter()
            batch, rounds = plan(s, args)
            hist = simulate(
                X[pool],
                y[pool],
                X[test],
                y[test],
                names,
                strategy=s,
                initial=args.initial,
                batch=batch,
                rounds=rounds,
                seed=seed,
                head_c=args.head_c,
                head=head,
            )
            seconds[s] += time.perf_counter() - t
            runs[s].append(hist)
            print(f"seed {seed} {s:>16}: " + " ".join(f"{h['labels']}:{h['accuracy']:.3f}" for h in hist), flush=True)
        if not args.no_noise:
            noise.append(noise_experiment(X[pool], y[pool], names, args.noise_set, args.noise, seed, args.head_c))
            print(f"seed {seed} label noise: {noise[-1]}", flush=True)
    results = [summarise(s, runs[s]) for s in strategies]

    steps = sorted({r["labels"] for res in results for r in res["rounds"]})
    base = next((r for r in results if r["strategy"] == "random"), None)
    target = base["rounds"][-1]["accuracy"] if base else None
    print(f"\nheld-out accuracy, mean ± spread (std) over {args.seeds} seed(s); pool {len(pool)}, test {len(test)}\n")
    head = "| strategy | " + " | ".join(str(n) for n in steps) + " | labels to reach random's final |"
    print(head)
    print("| --- |" + " ---: |" * (len(steps) + 1))
    for res in results:
        at = {r["labels"]: r for r in res["rounds"]}
        cells = [f"{at[n]['accuracy']:.1%} ± {at[n]['spread']:.1%}" if n in at else "-" for n in steps]
        reach = labels_to_reach(res["rounds"], target) if target is not None else None
        name = f"**{res['strategy']}** (default)" if res["strategy"] == DEFAULT_STRATEGY else res["strategy"]
        print(f"| {name} | " + " | ".join(cells) + f" | {reach if reach is not None else '-'} |")
    print("\n| strategy | simulation time per seed (s) |\n| --- | ---: |")
    for s in strategies:
        print(f"| {s} | {seconds[s] / args.seeds:.1f} |")
    if noise:
        p_at_k = np.mean([n["precision_at_k"] for n in noise])
        rec = np.mean([n["recall"] for n in noise])
        per_seed = ", ".join(f"{n['precision_at_k']:.1%}" for n in noise)
        print(
            f"\nlabel noise: {noise[0]['n']} labelled photos, {noise[0]['flipped']} flipped; "
            f"precision of top-{noise[0]['flipped']} = {p_at_k:.1%} "
            f"(per seed {per_seed}), recall of all "
            f"{np.mean([n['flagged'] for n in noise]):.0f} flagged = {rec:.1%}"
        )

    OUT.mkdir(parents=True, exist_ok=True)
    batch_tag = "" if args.batch == ap.get_default("batch") or args.quick else f"_batch{args.batch}"
    stem = (
        ("active_learning_quick" if args.quick else "active_learning")
        + ("" if args.model == DEFAULT.model else "_" + args.model.replace("|", "_").replace("+", "_"))
        + ("_semi_" + args.semi.replace(":", "_") if args.semi else "")
        + ("" if args.unlabeled == DEFAULT.unlabeled or args.semi else f"_unlabeled{args.unlabeled}")
        + batch_tag
    )
    (OUT / f"{stem}.json").write_text(
        json.dumps({"results": results, "noise": noise, "seconds": seconds, "args": vars(args)}, indent=1)
    )
    kind = (
        f"head {args.semi}"
        if args.semi
        else f"semi-supervised head ({args.unlabeled} unlabeled)"
        if args.unlabeled
        else "supervised head"
    )
    title = (
        f"intel-scenes, {args.model.replace('efficientnet_', '')}, {kind}, {args.initial} + {args.rounds} x "
        f"{args.batch} labels, {args.seeds} seed(s)"
        + (
            ""
            if args.until is None
            else f"\n(random to the end in batches of {args.random_batch}, the others to {args.until} labels)"
        )
    )
    png = OUT / f"{stem}.png"
    plot(results, png, title)
    if (
        not args.quick
        and not args.no_docs
        and args.model == args.docs_model
        and not args.semi
        and args.unlabeled == DEFAULT.unlabeled
    ):
        (REPO / "docs" / "img").mkdir(parents=True, exist_ok=True)
        shutil.copy(png, REPO / "docs" / "img" / f"active_learning{batch_tag}.png")
    print(f"\nwrote {png} ({png.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
