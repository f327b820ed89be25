"""Seeing the collection: duplicate groups, unusual photos and similar-photo search on the shared
scene photos, with near duplicates, byte copies and out-of-domain images made at run time.

    .venv/bin/python bench/curation.py [--json] [--n-dup 300] [--n-copy 30] [--n-ood 100]
        [--threshold 0.94] [--sizes 10000,50000]

About 5 minutes once the embeddings are cached (the first run embeds ~9.1k photos: 2 minutes on
2 idle cores, 14 on busy ones). With faiss importable the latency table also has its HNSW rows.

- Collection: every shared photo; `--n-dup` of them get one near duplicate each (in turn: mirror
  image, 6-12 % crop, JPEG re-encode at quality 40-75, colour shift of up to 10 %), `--n-copy` others
  a byte copy, and `--n-ood` out-of-domain images join (noise, text, shapes, gradients, digits; see
  tests/derived.py). Seeded: the same bytes every run.
- Embeddings: the default backbone (`TrainParams().model`, EfficientNet-Lite2 at 260 px) through ONNX
  Runtime, cached under ~/.cache/tasveer-bench (TASVEER_BENCH_CACHE): a rerun embeds nothing.
- Duplicates (training/duplicates.py, layout.py): pair precision and recall of the groups against
  the made pairs (a photo and its near duplicate or copy), with a threshold sweep of the layout
  check and of the embedding alone. Pairs of two shared photos count as false, though the data set
  has near duplicates of its own: precision is also shown with those pairs set aside.
- Unusual (training/unusual.py): precision@N (N = --n-ood) of the out-of-domain images in the
  ranking, class centroids from a balanced 600 labelled shared photos.
- Similar photos (training/neighbours.py): single-query top-10 latency p50/p95 at 10k and 50k
  embeddings: the real ones padded with jittered copies (a real embedding plus Gaussian noise of
  30 % of its length, renormalised), so only the timing, not the answers, means anything there.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from derived import NEAR_KINDS, ODD_KINDS, near_duplicate, out_of_domain  # noqa: E402
from training.data import balanced_sample, list_folder  # noqa: E402
from training.duplicates import CANDIDATE, MAX_CANDIDATES, NEAR_THRESHOLD, DuplicateFinder, UnionFind  # noqa: E402
from training.images import content_hash, read_image_file  # noqa: E402
from training.layout import pair_similarity, thumbnail  # noqa: E402
from training.neighbours import NeighbourIndex, faiss_module, normalise, pairs_above  # noqa: E402
from training.unusual import class_centroids, class_distance, neighbour_distance, unusual_ranking  # noqa: E402

DATA = Path(os.environ.get("TASVEER_SHARED") or REPO.parent / "shared") / "data" / "intel-scenes" / "train"
CACHE = Path(os.environ.get("TASVEER_BENCH_CACHE") or Path.home() / ".cache" / "tasveer-bench")
SWEEP = (0.86, 0.88, 0.90, 0.91, 0.92, 0.93, 0.94, 0.95)
EMBEDDING_SWEEP = (0.85, 0.90, 0.93, 0.96, 0.98)
SWEEP_COLUMNS = ("precision", "recall", "groups", "precision_without_those")


@dataclass
class Collection:
    ids: list = field(default_factory=list)
    blobs: list = field(default_factory=list)
    kinds: list = field(default_factory=list)  # "real", a near kind, "copy", or an out-of-domain kind
    labels: list = field(default_factory=list)  # the class of a shared photo, else None
    source: list = field(default_factory=list)  # the row a near duplicate or copy was made from, else -1

    def add(self, name, blob, kind, label=None, source=-1):
        self.ids.append(name)
        self.blobs.append(blob)
        self.kinds.append(kind)
        self.labels.append(label)
        self.source.append(source)


def build(n_dup: int, n_copy: int, n_ood: int, seed: int = 0) -> Collection:
    paths, labels, _ = list_folder(DATA)
    col = Collection()
    for path, label in zip(paths, labels):
        col.add(f"{label}/{path.name}", read_image_file(path), "real", label)
    rng = random.Random(seed)
    chosen = rng.sample(range(len(paths)), n_dup + n_copy)
    for i, row in enumerate(chosen[:n_dup]):
        kind = NEAR_KINDS[i % len(NEAR_KINDS)]
        col.add(f"near-{i}-{kind}", near_duplicate(col.blobs[row], kind, rng), kind, source=row)
    for i, row in enumerate(chosen[n_dup:]):
        col.add(f"copy-{i}", bytes(col.blobs[row]), "copy", source=row)
    for i in range(n_ood):
        kind = ODD_KINDS[i % len(ODD_KINDS)]
        col.add(f"odd-{i}-{kind}", out_of_domain(kind, rng), kind)
    return col


def embed(blobs: list[bytes]) -> tuple[np.ndarray, dict]:
    """Default-backbone features through ONNX Runtime, with the bench's embedding cache."""
    from training.backbones import create_backbone
    from training.cache import EmbeddingCache
    from training.onnx_export import ensure_backbone_onnx
    from training.ort import OrtBackbone
    from training.params import TrainParams

    backbone = create_backbone(TrainParams().model)
    ort = OrtBackbone(ensure_backbone_onnx(CACHE, backbone), backbone.spec(), backbone.id)
    cache = EmbeddingCache(CACHE)
    keys = {content_hash(b) for b in blobs}
    todo = len(keys) - len(cache.get_many(list(keys), ort.id, ort.image_size))
    start = time.perf_counter()
    X = ort.embed(blobs, cache=cache, progress=todo > 0)
    took = time.perf_counter() - start
    return X, {"model": backbone.name, "image_size": ort.image_size, "embedded": todo, "seconds": round(took, 1)}


def pair_figures(groups: list[list[int]], col: Collection) -> dict:
    """Pair precision / recall of groups (row lists) against the injected (source, copy) pairs."""
    truth = {(col.source[r], r) for r in range(len(col.ids)) if col.source[r] >= 0}
    group_of = {r: g for g, rows in enumerate(groups) for r in rows}
    found = sum(1 for a, b in truth if a in group_of and group_of[a] == group_of.get(b))
    predicted = sum(len(rows) * (len(rows) - 1) // 2 for rows in groups)
    # a pair of two shared photos is never an injected pair: false here, maybe a duplicate in the data
    real_pairs = sum(n * (n - 1) // 2 for n in (sum(col.kinds[r] == "real" for r in rows) for rows in groups))
    return {
        "precision": found / predicted if predicted else 1.0,
        "recall": found / len(truth) if truth else 1.0,
        "groups": len(groups),
        "predicted_pairs": predicted,
        "true_pairs_found": found,
        "truth_pairs": len(truth),
        "pairs_of_two_shared_photos": real_pairs,
        "precision_without_those": found / (predicted - real_pairs) if predicted > real_pairs else 1.0,
    }


def duplicates(col: Collection, X: np.ndarray, hashes: list[str], thumbs: list, threshold: float) -> dict:
    """The finder on all photos but the last 100 at once, then those 100 (the incremental step)."""
    finder = DuplicateFinder(X.shape[1], threshold)
    rows = {name: r for r, name in enumerate(col.ids)}
    start = time.perf_counter()
    finder.add(col.ids[:-100], X[:-100], hashes[:-100], thumbs[:-100])
    mid = time.perf_counter()
    finder.add(col.ids[-100:], X[-100:], hashes[-100:], thumbs[-100:])
    took_last = time.perf_counter() - mid
    groups = [[rows[i] for i in g.ids] for g in finder.groups()]
    out = pair_figures(groups, col)
    out.update(threshold=threshold, seconds_all=round(mid - start, 1), ms_add_100=round(took_last * 1e3))
    out["examples_of_two_shared_photos"] = [
        [col.ids[r] for r in g] for g in groups if all(col.kinds[r] == "real" for r in g)
    ][:6]
    return out


def candidates(col: Collection, X: np.ndarray) -> dict:
    """What the finder's cap (MAX_CANDIDATES) leaves out: each photo's candidates (earlier photos at
    cosine >= CANDIDATE), and where a made duplicate's original ranks among its own candidates."""
    Xn = normalise(X.astype(np.float32))
    per_row: list[list[tuple[float, int]]] = [[] for _ in range(len(Xn))]
    for r, c, s in pairs_above(Xn, Xn, CANDIDATE):
        if c < r:
            per_row[r].append((s, c))
    counts = np.array([len(x) for x in per_row])
    ranks = []
    for r, source in enumerate(col.source):
        if source >= 0:
            ranked = [c for _, c in sorted(per_row[r], reverse=True)]
            ranks.append(ranked.index(source) if source in ranked else -1)
    found = [k for k in ranks if k >= 0]
    return {
        "per_photo_mean": round(float(counts.mean()), 1),
        "per_photo_p50_p90_max": [int(np.median(counts)), int(np.percentile(counts, 90)), int(counts.max())],
        "pairs": int(counts.sum()),
        "pairs_capped": int(np.minimum(counts, MAX_CANDIDATES).sum()),
        "cap": MAX_CANDIDATES,
        "made_pairs_candidates": len(found),
        "made_pairs": len(ranks),
        "original_nearest": sum(k == 0 for k in found),
        "original_rank_max": max(found, default=-1),
    }


def grouped(n: int, links) -> list[list[int]]:
    sets = UnionFind()
    sets.grow(n)
    for a, b in links:
        sets.union(int(a), int(b))
    return [m for m in sets.members.values() if len(m) > 1]


def sweep(col: Collection, X: np.ndarray, hashes: list[str], thumbs: list) -> list[dict]:
    """Pair precision / recall of the layout check and of the embedding alone at each threshold,
    from the candidate pairs (embedding >= CANDIDATE; >= 0.80 for the embedding alone) found once."""
    Xn = normalise(X)
    found = np.array([(a, b, s) for a, b, s in pairs_above(Xn, Xn, min(CANDIDATE, 0.80)) if a < b])
    a, b, emb = found[:, 0].astype(np.int64), found[:, 1].astype(np.int64), found[:, 2]
    checked = emb >= CANDIDATE
    score = np.full(len(emb), -1.0)
    score[checked] = pair_similarity(np.stack(thumbs), a[checked], b[checked])
    first: dict[str, int] = {}
    copies = []
    for r, h in enumerate(hashes):
        if first.setdefault(h, r) != r:
            copies.append((first[h], r))
    rows = []
    for name, values, thresholds in (("layout", score, SWEEP), ("embedding alone", emb, EMBEDDING_SWEEP)):
        for t in thresholds:
            keep = values >= t
            figures = pair_figures(grouped(len(X), copies + list(zip(a[keep], b[keep]))), col)
            rows.append({"score": name, "threshold": t} | {k: figures[k] for k in SWEEP_COLUMNS})
    return rows


def unusual(col: Collection, X: np.ndarray, n_top: int, seed: int = 0) -> dict:
    """Precision@n_top of the out-of-domain rows under each score; 600 shared photos labelled."""
    real = [r for r, k in enumerate(col.kinds) if k == "real"]
    labelled = {real[i] for i in balanced_sample([col.labels[r] for r in real], 600, seed)}
    labels = [col.labels[r] if r in labelled else None for r in range(len(X))]
    odd = np.array([k in ODD_KINDS for k in col.kinds])
    start = time.perf_counter()
    ranking = unusual_ranking(X, labels)
    took = time.perf_counter() - start
    rows = sorted(labelled)
    _, centroids = class_centroids(X[rows], [labels[r] for r in rows])
    index = NeighbourIndex(X.shape[1])
    index.add(rows, X[rows])
    scores = {
        "ranking": ranking.score,
        "far_from_the_rest": ranking.rest,
        "known_class": ranking.known,
        "nearest_centroid": class_distance(X, centroids),
        "nearest_labelled": neighbour_distance(X, index=index, skip_above=np.inf),
    }
    out = {name: float(odd[np.argsort(-s, kind="stable")[:n_top]].mean()) for name, s in scores.items()}
    top = ranking.order[:n_top]
    out["missed_kinds"] = dict(Counter(col.kinds[r] for r in np.flatnonzero(odd) if r not in set(top)))
    out["shared_photos_among_them"] = [col.ids[r] for r in top if not odd[r]]
    out["seconds"] = round(took, 1)
    return out


def padded(X: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n normalised rows: the real ones, then jittered copies of random real ones."""
    Xn = normalise(X)
    rng = np.random.default_rng(seed)
    extra = Xn[rng.integers(0, len(Xn), max(0, n - len(Xn)))]
    noise = rng.standard_normal(extra.shape).astype(np.float32) * (0.3 / np.sqrt(X.shape[1]))
    return np.concatenate([Xn, normalise(extra + noise)])[:n]


def latency(X: np.ndarray, size: int, exact_limit: float, queries: int = 200, seed: int = 0) -> dict:
    """Single-query top-10 latency over `size` rows (the index as built by `add`, then `search`)."""
    base = padded(X, size, seed)
    index = NeighbourIndex(X.shape[1], exact_limit=exact_limit)
    start = time.perf_counter()
    index.add(list(range(size)), base)
    built = time.perf_counter() - start
    rng = np.random.default_rng(seed + 1)
    times = []
    hits = 0
    for row in rng.integers(0, len(X), queries):
        t = time.perf_counter()
        found = index.search(base[row], 10)[0]
        times.append(time.perf_counter() - t)
        hits += found[0][0] == row
    return {
        "size": size,
        "engine": index.engine,
        "build_s": round(built, 2),
        "p50_ms": round(float(np.percentile(times, 50)) * 1e3, 2),
        "p95_ms": round(float(np.percentile(times, 95)) * 1e3, 2),
        "self_found": float(hits / queries),
    }


def report(figures: dict) -> None:
    e, d, u = figures["embedding"], figures["duplicates"], figures["unusual"]
    print(
        f"photos {figures['photos']} ({figures['made']}); {e['model']} @ {e['image_size']} px: "
        f"{e['embedded']} embedded in {e['seconds']} s (the rest from {CACHE})"
    )
    print(
        f"\nduplicates at {d['threshold']}: pair precision {d['precision']:.3f}, recall {d['recall']:.3f} "
        f"({d['true_pairs_found']}/{d['truth_pairs']} injected pairs, {d['predicted_pairs']} pairs in "
        f"{d['groups']} groups; {d['pairs_of_two_shared_photos']} of two shared photos; precision without "
        f"those {d['precision_without_those']:.3f}); all at once {d['seconds_all']} s, adding 100 more "
        f"{d['ms_add_100']} ms"
    )
    c = figures["candidates"]
    print(
        f"candidates per photo (earlier photos at cosine >= {CANDIDATE}): mean {c['per_photo_mean']}, "
        f"p50/p90/max {c['per_photo_p50_p90_max']}; {c['pairs']} pairs, {c['pairs_capped']} under the cap of "
        f"{c['cap']}; a made duplicate's original is a candidate for {c['made_pairs_candidates']} of "
        f"{c['made_pairs']}, the nearest for {c['original_nearest']}, "
        f"at most rank {c['original_rank_max']} (0 = nearest)"
    )
    for group in d["examples_of_two_shared_photos"]:
        print("  shared photos grouped:", ", ".join(group))
    print("\n| score | threshold | pair precision | recall | groups | precision without shared-photo pairs |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in figures["sweep"]:
        print(
            f"| {row['score']} | {row['threshold']:.3f} | {row['precision']:.3f} | {row['recall']:.3f} | "
            f"{row['groups']} | {row['precision_without_those']:.3f} |"
        )
    print(
        f"\nunusual precision@{figures['n_ood']} (made out-of-domain images): ranking {u['ranking']:.2f}; "
        f"far from the rest {u['far_from_the_rest']:.2f}, known classes {u['known_class']:.2f} (nearest "
        f"centroid {u['nearest_centroid']:.2f}, nearest labelled {u['nearest_labelled']:.2f}); "
        f"{u['seconds']} s; missed {u['missed_kinds']}"
    )
    print(f"  shared photos among the first {figures['n_ood']}: {', '.join(u['shared_photos_among_them'])}")
    print("\n| similar-photo query (top 10) | engine | build s | p50 ms | p95 ms |")
    print("| --- | --- | --- | --- | --- |")
    for row in figures["latency"]:
        print(
            f"| {row['size']:,} embeddings | {row['engine']} | {row['build_s']} | {row['p50_ms']} | {row['p95_ms']} |"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--n-dup", type=int, default=300)
    ap.add_argument("--n-copy", type=int, default=30)
    ap.add_argument("--n-ood", type=int, default=100)
    ap.add_argument("--threshold", type=float, default=NEAR_THRESHOLD)
    ap.add_argument("--sizes", default="10000,50000", help="collection sizes for the query latency")
    args = ap.parse_args()
    col = build(args.n_dup, args.n_copy, args.n_ood)
    X, embedding = embed(col.blobs)
    hashes = [content_hash(b) for b in col.blobs]
    thumbs = [thumbnail(b) for b in col.blobs]
    figures = {
        "photos": len(col.ids),
        "made": f"{args.n_dup} near duplicates, {args.n_copy} byte copies, {args.n_ood} out-of-domain",
        "n_ood": args.n_ood,
        "embedding": embedding,
        "duplicates": duplicates(col, X, hashes, thumbs, args.threshold),
        "candidates": candidates(col, X),
        "sweep": sweep(col, X, hashes, thumbs),
        "unusual": unusual(col, X, args.n_ood),
        "latency": [latency(X, int(n), float("inf")) for n in args.sizes.split(",")],
    }
    if faiss_module() is not None:
        figures["latency"] += [latency(X, int(n), 0) for n in args.sizes.split(",")]
    print(json.dumps(figures, indent=1)) if args.json else report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
