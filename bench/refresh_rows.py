"""What a refresh computes before its head's write, against the project's size: the unlabeled tasks'
probabilities from their gathered embeddings (before 2026-12-06 afternoon) against the head applied
over the memo in place (backend/writeback/features.py); every unlabeled task's row made and arranged
(before 2026-12-06 noon) against every task ranked as arrays and only the queue's top made
(backend/writeback/ranked.py `queue_head`), then the rest's rows made after.

A temp embedding cache and task index with N tasks of 1,280-dim random vectors (bench/feature_memo.py),
a head of random weights over six labels, a curation with N/20 duplicate pairs and N unusual scores;
the embeddings are read once first (the memo), as in a serving backend. Per step, the median of
REPEATS; times swing with load: compare the columns of one run.

    .venv/bin/python bench/refresh_rows.py [--n 10000,50000] [--repeats 3] [--json]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend.collection.curationstore import Curation, CurationStore  # noqa: E402
from backend.collection.rowprep import arrange  # noqa: E402
from backend.writeback.features import TaskFeatures  # noqa: E402
from backend.writeback.ranked import Ranked, queue_head  # noqa: E402
from backend.writeback.refresh import HEAD  # noqa: E402
from bench.feature_memo import BACKBONE, DIM, project, size_args  # noqa: E402
from lsproto.config import build_label_config, parse_label_config  # noqa: E402
from lsproto.notes import WHY_UNCERTAIN  # noqa: E402
from training.classifier import Classifier  # noqa: E402

LABELS = ["buildings", "forest", "glacier", "mountain", "sea", "street"]
LABELED = 30


def world(root: Path, n: int):
    cache, index = project(root, n)
    backbone = SimpleNamespace(id=BACKBONE.id, preprocessing=BACKBONE.preprocessing, num_features=DIM, image_size=260)
    weight = np.random.default_rng(1).normal(scale=0.05, size=(len(LABELS), DIM)).astype(np.float32)
    classifier = Classifier(backbone, weight, np.zeros(len(LABELS), np.float32), LABELS)
    groups = [{"id": i, "tasks": [i, i + 1], "exact": False} for i in range(LABELED + 1, n, 20)]
    unusual = [{"task": i, "score": 5.0 - 10.0 * i / n, "rest": 1.0, "known": 0.5} for i in range(1, n + 1)]
    curation = Curation(backbone="b", held=n, groups=groups, unusual=unusual)
    curator = SimpleNamespace(store=lambda pid: CurationStore(root))
    return index, TaskFeatures(None, cache), classifier, curation, curator


def steps(n: int, repeats: int) -> dict[str, float]:
    cfg = parse_label_config(build_label_config(LABELS))
    columns = [(label, i) for i, label in enumerate(LABELS)]
    labeled = set(range(1, LABELED + 1))
    times: dict[str, list[float]] = {}

    def clock(name: str, start: float) -> float:
        now = time.perf_counter()
        times.setdefault(name, []).append(now - start)
        return now

    with tempfile.TemporaryDirectory() as tmp:
        index, features, classifier, curation, curator = world(Path(tmp), n)
        for _ in range(repeats + 1):  # the first fills the memo and is dropped
            start = time.perf_counter()
            tasks = index.tasks(exclude=labeled)
            listed = clock("tasks listed", start)
            x, ids, _ = features.of_indexed(classifier.backbone, "image", tasks, None, "1", index)
            gathered = classifier.proba_from_features(x)
            del x
            copied = clock("probabilities: the embeddings gathered, then the head (before)", listed)
            head = classifier.proba_from_features
            proba, ids, _ = features.of_indexed(classifier.backbone, "image", tasks, None, "1", index, head)
            in_place = clock("probabilities: the head over the memo in place (now)", copied)
            assert np.allclose(proba, gathered)
            ranked = Ranked(cfg, "v0002", proba, columns, "margin", ids, WHY_UNCERTAIN)
            shared = clock("ranks", in_place)
            whole = arrange(curator, "1", curation, ranked.rows(), [], labeled)
            clock("every row made and arranged (before)", shared)
            head_start = time.perf_counter()
            head = queue_head(ranked, lambda rows: arrange(curator, "1", curation, rows, [], labeled), HEAD)
            clock("the head's rows made and arranged (now)", head_start)
            assert head.rows == whole.rows[:HEAD]
    return {name: round(statistics.median(v[1:]), 3) for name, v in times.items()}


def main() -> None:
    args = size_args(__doc__)
    out = []
    for n in [int(x) for x in args.n.split(",")]:
        row = {"n": n, **steps(n, args.repeats)}
        out.append(row)
        print(" | ".join(f"{k}: {v}" for k, v in row.items()), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
