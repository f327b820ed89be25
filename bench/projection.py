"""Which 2-D projection should the embedding map draw? PCA against neighbour-graph methods.

    .venv/bin/python bench/projection.py                         # 8,741 real photos, then 50,000
    .venv/bin/python bench/projection.py --sizes 8741 --methods pca,umap
    .venv/bin/python bench/projection.py --json
    (the 8,741 real photos' maps side by side: docs/img/map_projections.png, --plot '' for none)

The shared photos' default-backbone embeddings (ONNX Runtime, cached like bench/curation.py's; the
first run embeds ~8.7k photos, 3-4 minutes). Beyond 8,741 the rows are jittered copies of real
ones (bench/curation.py's `padded`): timing only there, and the quality figures of those rows are
not the photos'.

Per method and size:
* neighbours kept: of each photo's 10 nearest photos (cosine, full embedding), the share that are
  also among its 10 nearest points on the map (`training.projection.neighbour_overlap`, 1,000
  photos): does a point's surroundings on the map show photos that look like it?
* class purity: the share of photos whose 10 nearest points on the map mostly carry its own class
  (the true folder label): do the colours form regions a lasso can select?
* seconds to lay out all points (2 shared cores, after a warm-up run on 2,000 points so that a
  JIT-compiled method does not count its compilation), and for a method that can place new points
  into an existing map, the seconds to place 100.

Methods: `pca` and `tsne` (training/projection.py: what the map draws; openTSNE, FFT-accelerated, on
50 principal components), `umap` (umap-learn on 50 principal components), `pacmap`. The last two are
not dependencies of tasveer (they bring numba): `.venv/bin/pip install umap-learn==0.5.12
pacmap==0.9.1` first, or leave them out with --methods pca,tsne.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib.util import find_spec
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from curation import DATA, embed, padded  # noqa: E402

from training.data import list_folder  # noqa: E402
from training.images import read_image_file  # noqa: E402
from training.projection import neighbour_overlap, project_2d  # noqa: E402

K = 10
SAMPLE = 1000
PRE_DIMS = 50  # principal components fed to the neighbour-graph methods (their documented practice)
NEW = 100
SEED = 0


def pre_reduce(vectors: np.ndarray):
    """(PCA fitted on `vectors` to PRE_DIMS components, the reduced rows)."""
    from sklearn.decomposition import PCA

    pca = PCA(PRE_DIMS, random_state=SEED).fit(vectors)
    return pca, pca.transform(vectors).astype(np.float32)


def run_pca(vectors: np.ndarray):
    """(points, None): a linear map places a new photo by the same product, nothing to time."""
    return project_2d(vectors), None


def run_umap(vectors: np.ndarray):
    import umap

    pca, reduced = pre_reduce(vectors)
    model = umap.UMAP(n_neighbors=15, min_dist=0.1, random_state=SEED, n_jobs=1)
    points = model.fit_transform(reduced)
    return points, lambda new: model.transform(pca.transform(new).astype(np.float32))


def run_tsne(vectors: np.ndarray):
    from openTSNE import TSNE

    pca, reduced = pre_reduce(vectors)
    model = TSNE(n_jobs=2, random_state=SEED, verbose=False).fit(reduced)
    return np.asarray(model), lambda new: model.transform(pca.transform(new).astype(np.float32))


def run_pacmap(vectors: np.ndarray):
    import pacmap

    _, reduced = pre_reduce(vectors)
    return pacmap.PaCMAP(n_components=2, random_state=SEED).fit_transform(reduced, init="pca"), None


METHODS = {"pca": run_pca, "umap": run_umap, "tsne": run_tsne, "pacmap": run_pacmap}


def class_purity(points: np.ndarray, labels: np.ndarray, sample: int = SAMPLE) -> float:
    """Share of sampled points whose K nearest map points mostly share their label."""
    rng = np.random.default_rng(SEED)
    rows = rng.choice(len(points), size=min(sample, len(points)), replace=False)
    p = np.asarray(points, dtype=np.float64)
    hits = 0
    for r in rows:
        near = np.argsort(((p - p[r]) ** 2).sum(axis=1))[1 : K + 1]
        hits += int((labels[near] == labels[r]).sum() * 2 > K)
    return hits / len(rows)


def place_new(place, vectors: np.ndarray) -> float | None:
    """Seconds to place NEW rows into the fitted map (jittered copies of fitted ones), or None
    where the method has no way to (PaCMAP) or needs none (PCA: one product)."""
    if place is None:
        return None
    rng = np.random.default_rng(SEED)
    new = vectors[:NEW] + rng.standard_normal((NEW, vectors.shape[1])).astype(np.float32) * 0.01
    start = time.perf_counter()
    place(new)
    return round(time.perf_counter() - start, 2)


def measure(name: str, vectors: np.ndarray, labels: np.ndarray | None) -> tuple[dict, np.ndarray]:
    start = time.perf_counter()
    points, place = METHODS[name](vectors)
    took = time.perf_counter() - start
    row: dict = {"method": name, "n": len(vectors), "seconds": round(took, 1)}
    if labels is not None:
        row["neighbours_kept"] = round(neighbour_overlap(vectors, points, K, SAMPLE), 3)
        row["class_purity"] = round(class_purity(points, labels), 3)
    row["place_100_s"] = place_new(place, vectors)
    return row, np.asarray(points)


def plot(maps: dict[str, tuple[dict, np.ndarray]], labels: np.ndarray, path: Path) -> None:
    """The real photos' maps side by side, coloured by class, each titled with its figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = sorted(set(labels.tolist()))
    fig, axes = plt.subplots(1, len(maps), figsize=(4.2 * len(maps), 4.6), squeeze=False)
    for ax, (name, (row, points)) in zip(axes[0], maps.items()):
        for i, c in enumerate(classes):
            at = labels == c
            ax.scatter(points[at, 0], points[at, 1], s=1, color=f"C{i}", label=c, rasterized=True)
        ax.set_title(
            f"{name}: {row['neighbours_kept']:.0%} of neighbours kept\n"
            f"class purity {row['class_purity']:.0%}, {row['seconds']} s",
            fontsize=10,
        )
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].legend(markerscale=8, fontsize=8, loc="best")
    fig.suptitle(f"{len(labels):,} shared photos, Lite2 embeddings, coloured by class")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    print(f"plot: {path}", file=sys.stderr)


def shared_embeddings() -> tuple[np.ndarray, np.ndarray]:
    paths, labels, _ = list_folder(DATA)
    X, _ = embed([read_image_file(p) for p in paths])
    return X.astype(np.float32), np.asarray(labels)


def report(rows: list[dict]) -> None:
    print("| method | photos | neighbours kept (10 nearest) | class purity | seconds | place 100 new s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        kept = r.get("neighbours_kept", "-")
        purity = r.get("class_purity", "-")
        place = "-" if r["place_100_s"] is None else r["place_100_s"]
        print(f"| {r['method']} | {r['n']:,} | {kept} | {purity} | {r['seconds']} | {place} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="8741,50000", help="numbers of photos (beyond 8,741: jittered copies)")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated: " + ", ".join(METHODS))
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ap.add_argument(
        "--plot",
        default=str(BENCH.parent / "docs" / "img" / "map_projections.png"),
        help="where the real photos' maps are drawn side by side ('' for none)",
    )
    args = ap.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        ap.error(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    missing = [m for m, module in (("umap", "umap"), ("pacmap", "pacmap")) if m in methods and not find_spec(module)]
    if missing:
        ap.error(f"{', '.join(missing)} not installed: .venv/bin/pip install umap-learn==0.5.12 pacmap==0.9.1")
    X, labels = shared_embeddings()
    for name in methods:  # warm-up: JIT compilation and imports out of the timings
        METHODS[name](padded(X, 2000))
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        vectors = padded(X, n)
        known = labels[:n] if n <= len(labels) else None
        maps = {}
        for name in methods:
            row, points = measure(name, vectors, known)
            rows.append(row)
            maps[name] = (row, points)
            print(json.dumps(row), file=sys.stderr, flush=True)
        if n == len(labels) and args.plot:
            plot(maps, labels, Path(args.plot))
    if args.json:
        print(json.dumps({"rows": rows}))
    else:
        report(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
