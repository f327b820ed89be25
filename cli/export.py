"""`tasveer export`: one model version as a self-contained ONNX graph, its labels and a model card."""

from __future__ import annotations

import argparse
import io
import json
import zipfile
from pathlib import Path

from cli.common import fail, locate_model

FILES = ("model.onnx", "labels.json", "MODEL_CARD.md")

DESCRIPTION = """\
Write one model version as DIR/model.onnx: a single ONNX graph from photos to calibrated
probabilities (every network the version reads, its head, temperature, softmax, and flip TTA when
the version uses it), runnable with onnxruntime, numpy and Pillow alone. Beside it: labels.json
(the labels in output order) and MODEL_CARD.md (metrics, training data and parameters, and five
lines of Python that run it).

Input: uint8 RGB images in NHWC layout (N, S, S, 3), each photo resized with Pillow as the product
does (short side to S, centre crop); normalisation happens inside the graph. A version whose
networks read different sizes (an ensemble) takes one input per size: the graph's metadata `inputs`
names them. Outputs: `probabilities` (N, C) float32 and `label_index` (N,) int64.

With --backend instead of --model: the ML backend builds the files (GET /projects/<id>/versions/
<vid>/export, the model page's download link) and they are unpacked into DIR. The version is, unless
--version names one, the project's production version (`tasveer deploy`); from a local store, the
production version when the store has one, else the serving one."""


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "export",
        help="write a model version as one ONNX graph (+ labels, model card)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--model",
        type=Path,
        metavar="STORE|VERSION_DIR",
        help="model store (its production or serving version, or --version) or a version directory",
    )
    source.add_argument("--backend", metavar="URL", help="download the version from this ML backend instead")
    p.add_argument(
        "--project", type=int, help="with --backend: the Label Studio project id (default: the `tasveer up` project)"
    )
    p.add_argument("--data-dir", default="./var", help="with --backend: data dir of `tasveer up`, read for defaults")
    p.add_argument(
        "--version",
        default=None,
        metavar="vNNNN",
        help="the version to export (default: the production version; a store without one: the serving one)",
    )
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="directory to write model.onnx, labels.json and MODEL_CARD.md into (created if missing)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from training.exportgraph import ExportError, export_version
    from training.store import StoreError

    if args.backend:
        return from_backend(args)
    try:
        store, vid = locate_model(args.model)
        if vid is not None and args.version not in (None, vid):
            return fail("export", f"{args.model} is version {vid}, not {args.version}")
        vid = vid or args.version or store.production() or store.serving()
        if vid is None:
            return fail("export", f"no version is serving in {args.model}; name one with --version")
        path = export_version(store, vid, args.out)
    except (StoreError, ExportError) as exc:
        return fail("export", str(exc))
    return report(args, vid, path)


def report(args, vid: str, path: Path) -> int:
    files = [str(path), str(path.with_name("labels.json")), str(path.with_name("MODEL_CARD.md"))]
    if args.json:
        print(json.dumps({"version": vid, "model": files[0], "files": files, "bytes": path.stat().st_size}))
    else:
        print(f"exported {vid} to {path} ({path.stat().st_size / 2**20:.1f} MiB), with labels.json and MODEL_CARD.md")
    return 0


def from_backend(args) -> int:
    """The version's zip from the backend, unpacked into --out."""
    from cli.backendapi import BackendAPIError, call, login, resolve

    try:
        url, project = resolve(args)
        auth = login(args, url)  # the environment's credentials, or the `tasveer up` state's secret
        vid = args.version or call("GET", f"{url}/projects/{project}/production", auth).get("production")
        if not vid:
            return fail(
                "export",
                f"project {project} has no production version: deploy one (`tasveer deploy "
                "vNNNN`) or name one with --version",
            )
        data = download(f"{url}/projects/{project}/versions/{vid}/export", auth)
        args.out.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for name in FILES:  # only these names, never a path from the archive
                (args.out / name).write_bytes(zf.read(name))
    except (BackendAPIError, zipfile.BadZipFile, KeyError, OSError) as exc:
        return fail("export", str(exc))
    return report(args, vid, args.out / FILES[0])


def download(url: str, auth: tuple[str, str] | None) -> bytes:
    """The export's bytes; `auth` from cli.backendapi's `login`."""
    import requests

    from cli.backendapi import BackendAPIError

    try:
        resp = requests.get(url, timeout=600, auth=auth)
    except requests.RequestException as exc:
        raise BackendAPIError(
            f"the backend at {url.split('/projects')[0]} is not reachable ({type(exc).__name__})"
        ) from None
    if resp.status_code >= 400:
        try:
            message = resp.json().get("error")
        except ValueError:
            message = resp.text[:300]
        raise BackendAPIError(message or f"HTTP {resp.status_code}")
    return resp.content
