"""`tasveer label-errors` finds labels injected wrong into a class-per-folder tree of real photos."""

from __future__ import annotations

import json

import scenes
from lsfixture import run_tasveer


def test_injected_wrong_labels_rank_at_the_top(tmp_path):
    classes = ["buildings", "forest", "sea"]
    paths, labels = scenes.sample(20, seed=7, classes=classes)
    wrong = {3: "sea", 25: "buildings", 47: "forest"}  # a building, a forest and a sea photo misfiled
    for i, (path, label) in enumerate(zip(paths, labels)):
        folder = tmp_path / "tree" / wrong.get(i, label)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / path.name).symlink_to(path)
    proc = run_tasveer(
        "label-errors", "--data", str(tmp_path / "tree"), "--top", "6", "--json", "--cache", str(tmp_path / "cache")
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["n"] == 60
    top = out["suspects"]
    injected = {paths[i].name: (labels[i], given) for i, given in wrong.items()}
    found = [s for s in top if s["path"].rsplit("/", 1)[-1] in injected]
    assert len(found) >= 2, top
    for s in found:  # the suggestion is the photo's true class, the given label the injected one
        true, given = injected[s["path"].rsplit("/", 1)[-1]]
        assert (s["given"], s["suggested"]) == (given, true), s
    text = run_tasveer(
        "label-errors", "--data", str(tmp_path / "tree"), "--top", "3", "--cache", str(tmp_path / "cache")
    )
    assert text.returncode == 0 and "labels look wrong" in text.stdout and " -> " in text.stdout, text.stdout
