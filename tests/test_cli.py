"""The installed `tasveer` command: train -> evaluate -> predict round trip, errors, --help."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from scenes import REPO, SCENES

TASVEER = str(Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin" / "tasveer")
if not Path(TASVEER).exists():
    TASVEER = str(REPO / ".venv" / "bin" / "tasveer")


def run(*args, cache):
    return subprocess.run(
        [TASVEER, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TASVEER_CACHE": str(cache)},
    )


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["predict"], ["up"], ["import"], ["retrain"]])
def test_help(command, tmp_path):
    proc = run(*command, "--help", cache=tmp_path)
    assert proc.returncode == 0 and "usage: tasveer" in proc.stdout


def test_train_evaluate_predict_round_trip(tmp_path):
    store, cache = tmp_path / "store", tmp_path / "cache"
    proc = run("train", "--data", SCENES, "--out", store, "--limit", 48, "--seed", 3, "--json", cache=cache)
    assert proc.returncode == 0, proc.stderr
    trained = json.loads(proc.stdout)
    assert trained["version"] == "v0001" and trained["n_train"] == 48
    assert "embedding" in proc.stderr  # progress bar on stderr, JSON alone on stdout

    plot = tmp_path / "cm.png"
    proc = run(
        "evaluate",
        "--model",
        store,
        "--data",
        SCENES,
        "--limit",
        36,
        "--seed",
        11,
        "--json",
        "--plot",
        plot,
        cache=cache,
    )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    assert metrics["n"] == 36 and metrics["accuracy"] > 0.5 and len(metrics["confusion_matrix"]) == 6
    assert plot.read_bytes()[:4] == b"\x89PNG"

    sea = sorted((SCENES / "sea").glob("*.jpg"))[:2]
    junk = tmp_path / "notes.jpg"
    junk.write_text("not a photo")
    proc = run("predict", "--model", store / "versions" / "v0001", *sea, junk, "--json", cache=cache)
    assert proc.returncode == 1  # one input failed, and says so
    out = json.loads(proc.stdout)
    good, bad = out["predictions"][:2], out["predictions"][2]
    assert all(p["label"] in metrics["labels"] and 0 <= p["confidence"] <= 1 for p in good)
    assert "not an image" in bad["error"]

    proc = run("predict", "--model", store, sea[0], cache=cache)  # plain text output
    assert proc.returncode == 0 and str(sea[0]) in proc.stdout


def test_readable_errors(tmp_path):
    proc = run("train", "--data", tmp_path / "nope", "--out", tmp_path / "s", cache=tmp_path)
    assert proc.returncode == 2 and "not a directory" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("train", "--data", SCENES, "--out", tmp_path / "s", "--lr", "-3", cache=tmp_path)
    assert proc.returncode == 2 and "lr must be > 0" in proc.stderr
    proc = run("predict", "--model", tmp_path, "x.jpg", cache=tmp_path)
    assert proc.returncode == 2 and "neither a model store" in proc.stderr
