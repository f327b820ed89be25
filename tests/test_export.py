"""`tasveer export`: a version as one ONNX graph that stands alone. A head version, a fine-tuned one
(flip TTA), an ensemble (fine-tune + a head on two pretrained networks, three input sizes) and a head
over two backbones (`second_model`), each run in a fresh Python that can import only numpy, Pillow
and onnxruntime, give the probabilities the product serves for the same real photos."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

from cli.main import main
from scenes import CLASSES, REPO, read, sample
from training.cache import EmbeddingCache
from training.exportgraph import export_version
from training.images import decode_image
from training.params import TrainParams
from training.preprocess import Preprocessing
from training.serving import load_classifier
from training.store import ModelStore
from training.storeformat import FEATURES_ONNX, write_manifest
from training.train import fit

TOL = 1e-4  # max abs difference from the probabilities the product serves
BLOCKED = ["torch", "timm", "training", "backend", "sync", "cli", "lsproto", "onnx"]
INPUTS = {
    "head": ["image"],
    "finetune": ["image"],
    "pair": ["image", "image_240_bicubic"],
    "ensemble": ["image", "image_260_bicubic", "image_240_bicubic"],
}

# Runs as `python -I -S runner.py job.json`: no site (no .pth, so no editable tasveer), then the
# site-packages folder where torch and timm lie is put back behind a finder that refuses every
# top-level module but the standard library's, numpy's, Pillow's and onnxruntime's.
RUNNER = textwrap.dedent("""
    import importlib.abc, json, sys

    ALLOWED = {"numpy", "PIL", "onnxruntime"}

    class OnlyAllowed(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            top = name.partition(".")[0]
            if top in ALLOWED or top in sys.stdlib_module_names:
                return None
            raise ModuleNotFoundError(f"blocked: {name}", name=name)

    job = json.load(open(sys.argv[1]))
    sys.meta_path.insert(0, OnlyAllowed())
    sys.path.append(job["site"])
    refused = []
    for name in job["blocked"]:
        try:
            __import__(name)
        except ImportError:
            refused.append(name)
    import contextlib, io, os
    import numpy as np, onnxruntime as ort
    from PIL import Image, ImageOps

    def fit(img, size, interpolation):  # short side to size, centre crop (written anew here)
        w, h = img.size
        k = size / min(w, h)
        W, H = max(size, round(w * k)), max(size, round(h * k))
        left, top = (W - size) // 2, (H - size) // 2
        resized = img.resize((W, H), Image.Resampling[interpolation.upper()])
        return np.asarray(resized.crop((left, top, left + size, top + size)))

    images = [ImageOps.exif_transpose(Image.open(p)).convert("RGB") for p in job["photos"]]
    out = {"refused": refused, "models": {}}
    for folder in job["models"]:
        session = ort.InferenceSession(os.path.join(folder, "model.onnx"), providers=["CPUExecutionProvider"])
        meta = session.get_modelmeta().custom_metadata_map
        feed = {name: np.stack([fit(img, **spec) for img in images])
                for name, spec in json.loads(meta["inputs"]).items()}
        proba, index = session.run(None, feed)
        card = open(os.path.join(folder, "MODEL_CARD.md")).read()
        snippet = card.split("```python\\n")[1].split("```")[0]
        printed = io.StringIO()
        os.chdir(folder)  # the card's five lines as written, on the first photo
        with contextlib.redirect_stdout(printed):
            exec(snippet.replace('"photo.jpg"', repr(job["photos"][0])), {})
        out["models"][folder] = {"proba": proba.tolist(), "index": index.tolist(), "meta": meta,
                                 "inputs": [[i.name, i.type, i.shape] for i in session.get_inputs()],
                                 "snippet": printed.getvalue().split()}
    out["modules"] = sorted({m.split(".")[0] for m in sys.modules} - set(sys.stdlib_module_names))
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def photos():
    paths, labels = sample(7, seed=31)  # 42 photos: a validation split of 21 for the ensemble
    tests = sample(2, seed=31, skip=7)[0]  # 12 others
    return read(paths), labels, [str(p) for p in tests]


@pytest.fixture(scope="module")
def published(photos, tmp_path_factory):
    """The ensemble first: the head and the two-backbone head then find Lite2's and Lite1's
    features of the same photos in the cache."""
    train, labels, _ = photos
    store = ModelStore(tmp_path_factory.mktemp("store"))
    cache = EmbeddingCache(tmp_path_factory.mktemp("emb"))
    recipes = {
        "ensemble": {"preset": "accurate", "epochs": 1, "image_size": 64, "batch_size": 8, "val_fraction": 0.5},
        "head": {},
        "pair": {"preset": "balanced"},
        "finetune": {
            "mode": "finetune",
            "epochs": 1,
            "image_size": 64,
            "batch_size": 8,
            "val_fraction": 0,
            "tta": True,
        },
    }
    vids: dict[str, str] = {}
    for kind, values in recipes.items():
        params = TrainParams.from_dict(values)
        blobs, y = (train[::3], labels[::3]) if kind == "finetune" else (train, labels)
        vids[kind] = store.publish(
            fit(blobs, y, CLASSES, params, cache=cache), params=params, plot=False, parent=vids.get("ensemble")
        )
    return store, vids


@pytest.fixture(scope="module")
def exported(published, photos, tmp_path_factory):
    """Each version exported, then all run by one fresh, torch-free process; and what the product
    serves for the same photos."""
    store, vids = published
    out = tmp_path_factory.mktemp("exported")
    folders = {kind: export_version(store, vid, out / kind).parent for kind, vid in vids.items()}
    job = out / "job.json"
    job.write_text(
        json.dumps(
            {
                "site": str(Path(np.__file__).parents[1]),
                "blocked": BLOCKED,
                "photos": photos[2],
                "models": [str(f) for f in folders.values()],
            }
        )
    )
    (out / "runner.py").write_text(RUNNER)
    proc = subprocess.run(
        [sys.executable, "-I", "-S", str(out / "runner.py"), str(job)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=out,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ran = json.loads(proc.stdout.strip().splitlines()[-1])
    blobs = read(photos[2])
    served = {kind: load_classifier(store, vid, engine="onnx").predict_proba(blobs) for kind, vid in vids.items()}
    return folders, ran, served


def test_the_fresh_process_could_import_only_numpy_pillow_and_onnxruntime(exported):
    _, ran, _ = exported
    assert ran["refused"] == BLOCKED  # torch and tasveer were on its path, and refused
    assert set(ran["modules"]) <= {"numpy", "PIL", "onnxruntime", "__main__"}


@pytest.mark.parametrize("kind", list(INPUTS))
def test_exported_graph_gives_the_served_probabilities(exported, kind):
    folders, ran, served = exported
    got = ran["models"][str(folders[kind])]
    proba, index = np.array(got["proba"]), np.array(got["index"])
    assert proba.shape == served[kind].shape == (12, len(CLASSES))
    assert np.abs(proba - served[kind]).max() <= TOL
    assert (index == served[kind].argmax(axis=1)).all() and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert [i[0] for i in got["inputs"]] == INPUTS[kind] and {i[1] for i in got["inputs"]} == {"tensor(uint8)"}
    # the model card's five lines, run as written, print the served label and its probability
    label, p = got["snippet"]
    top = served[kind][0].argmax()
    assert label == CLASSES[top] and abs(float(p) - served[kind][0, top]) <= TOL


@pytest.mark.parametrize("kind", list(INPUTS))
def test_one_graph_holds_every_network_and_says_what_it_is(published, exported, kind):
    store, vids = published
    folders, ran, _ = exported
    manifest = store.manifest(vids[kind])
    model = onnx.load(str(folders[kind] / "model.onnx"))
    onnx.checker.check_model(model)
    assert sorted(p.name for p in folders[kind].iterdir()) == ["MODEL_CARD.md", "labels.json", "model.onnx"]
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    networks = {n.name.split(".")[0] for n in model.graph.node if n.name.startswith("net")}
    assert len(networks) == 1 + len(manifest.get("partners", []))
    flips = [n for n in model.graph.node if n.op_type == "Split"]
    assert len(flips) == (kind in ("ensemble", "finetune"))  # TTA: the fine-tuned network's flip average
    assert [o.name for o in model.graph.output] == ["probabilities", "label_index"]
    meta = ran["models"][str(folders[kind])]["meta"]
    assert json.loads(meta["labels"]) == CLASSES == json.loads((folders[kind] / "labels.json").read_text())
    assert meta["version"] == vids[kind] and meta["input_layout"] == "NHWC"
    assert int(meta["image_size"]) == manifest["image_size"] and int(meta["n_train"]) == manifest["n_train"]
    card = (folders[kind] / "MODEL_CARD.md").read_text()
    assert f"version {vids[kind]}" in card and f"parent version: {manifest['parent'] or 'none'}" in card
    metrics = manifest["metrics"]
    if kind == "finetune":  # val_fraction 0: no photo was held out, so no metrics
        assert "accuracy" not in metrics and "accuracy" not in meta and "No evaluation" in card
    else:
        for key in ("accuracy", "macro_f1", "ece"):
            assert float(meta[key]) == pytest.approx(metrics[key])
        assert all(f"| {name} |" in card for name in CLASSES) and "calibration error" in card
    assert f"Trained on {manifest['n_train']} labelled photos of 6 classes" in card


def test_cli_exports_a_version_directory_in_a_process_without_torch(published, exported, tmp_path):
    store, vids = published
    folders, _, _ = exported
    code = (
        "import sys; sys.modules['torch'] = None; from cli.main import main; "
        f"sys.exit(main(['export', '--model', {str(store.version_dir(vids['ensemble']))!r}, '--out', "
        f"{str(tmp_path / 'ens')!r}]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": ""},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"exported {vids['ensemble']}" in proc.stdout
    assert (tmp_path / "ens" / "model.onnx").read_bytes() == (folders["ensemble"] / "model.onnx").read_bytes()


def test_cli_exports_a_stores_serving_or_named_version(published, exported, tmp_path, capsys):
    store, vids = published
    folders, _, _ = exported
    assert main(["export", "--model", str(store.root), "--out", str(tmp_path / "a"), "--json"]) == 0
    said = json.loads(capsys.readouterr().out)
    assert said["version"] == store.serving() == vids["finetune"] and Path(said["model"]).exists()
    assert main(["export", "--model", str(store.root), "--version", vids["head"], "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "model.onnx").read_bytes() == (folders["head"] / "model.onnx").read_bytes()
    bad = [
        "export",
        "--model",
        str(store.version_dir(vids["head"])),
        "--version",
        vids["pair"],
        "--out",
        str(tmp_path / "c"),
    ]
    assert main(bad) == 2 and f"is version {vids['head']}" in capsys.readouterr().err
    assert main(["export", "--model", str(store.root), "--version", "v0999", "--out", str(tmp_path / "d")]) == 2
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


def test_a_version_published_without_its_graph_is_exported_through_torch(published, photos, tmp_path):
    """Versions published before ONNX export (or where it failed): torch exports the network."""
    store, vids = published
    vid = vids["finetune"]
    shutil.copytree(store.root, tmp_path / "old")
    old = ModelStore(tmp_path / "old")
    manifest = old.manifest(vid)
    manifest["onnx"] = None
    write_manifest(old.version_dir(vid), manifest)
    (old.version_dir(vid) / FEATURES_ONNX).unlink()
    path = export_version(old, vid, tmp_path / "out")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    blobs = read(photos[2])
    prep = Preprocessing.from_spec({**manifest["backbone"], "mean": (0, 0, 0), "std": (1, 1, 1)})
    images = np.stack([np.asarray(prep.resize_crop(decode_image(b))) for b in blobs])
    proba, _ = session.run(None, {"image": images})
    expected = load_classifier(old, vid, engine="torch").predict_proba(blobs)
    assert np.abs(proba - expected).max() <= TOL
