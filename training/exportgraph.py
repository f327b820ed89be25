"""One stored version as ONE self-contained ONNX graph, image to calibrated probabilities, that runs
with onnxruntime, numpy and Pillow alone (no torch, no tasveer):

    OUT/model.onnx      inputs: uint8 RGB images, NHWC (N, S, S, 3), one input per resize the
                        product makes (see below); outputs `probabilities` (N, C) float32 and
                        `label_index` (N,) int64; metadata_props say the rest (exportcard.py)
    OUT/labels.json     the labels, in the order of the probabilities' columns
    OUT/MODEL_CARD.md   what it is, how well it does, how to run it

The graph is composed, with the `onnx` package, from the per-network graphs the store already
serves (storepublish.py: ROOT/backbones/..., versions/<vid>/features.onnx), so exporting needs no
torch; torch exports a network only for a version published without its graph. Inside the graph,
for each network: uint8 -> float, (x / 255 - mean) / std, NHWC -> NCHW, the flip average when the
network's spec says `tta` (the image and its mirror image through the network, features averaged,
as embedder.flip_averaged), then the features side by side (pair.PairBackbone), the head (the
temperature is folded into it), softmax and argmax.

What stays outside: decoding and resizing. The product resizes each photo with PIL (short side
to the network's size, centre crop: preprocess.Preprocessing.resize_crop), which ONNX's Resize does
not reproduce to the bit. So the graph's input `image` is the photo resized that way to the
version's `image_size`; a version whose networks read other sizes (an ensemble: its fine-tune at
one size, its head's pretrained networks at theirs) has one more input per (size, interpolation),
named `image_<size>_<interpolation>`, and the metadata `inputs` says which is which.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import onnx
from onnx import TensorProto, compose, helper, numpy_helper, version_converter

from .atomic import write_atomic
from .exportcard import metadata, model_card
from .ort import INPUT, OUTPUT
from .store import ModelStore, partners

if TYPE_CHECKING:
    from .backbones import Backbone

MODEL, LABELS_JSON, CARD = "model.onnx", "labels.json", "MODEL_CARD.md"
PROBABILITIES, LABEL_INDEX = "probabilities", "label_index"
MIN_OPSET = 18  # Split's num_outputs; the store's graphs are exported at 18 (onnx_export.OPSET)
BATCH = "N"


class ExportError(RuntimeError):
    """A version that cannot be written as one graph; the message says why."""


@dataclass(frozen=True)
class Network:
    """One network a version reads: its features graph (images -> features) and its backbone spec."""

    graph: onnx.ModelProto
    spec: dict

    @property
    def source(self) -> tuple[int, str]:
        """The resize the product gives this network's photos: (size, interpolation)."""
        return int(self.spec["image_size"]), str(self.spec["interpolation"])


def export_version(store: ModelStore, vid: str, out_dir: Path) -> Path:
    """Write version `vid` of `store` as model.onnx, labels.json and MODEL_CARD.md into `out_dir`
    (each file atomically); returns the path of model.onnx."""
    manifest = store.manifest(vid)
    nets = networks(store, vid, manifest)
    weight, bias = store.head(vid)
    inputs = input_names(nets)
    model = compose_graph(nets, weight, bias, inputs)
    described = {name: {"size": size, "interpolation": how} for (size, how), name in inputs.items()}
    helper.set_model_props(model, metadata(vid, manifest, described))
    onnx.checker.check_model(model)
    out = Path(out_dir)
    write_atomic(out / LABELS_JSON, json.dumps(manifest["labels"], indent=1).encode())
    write_atomic(out / CARD, model_card(vid, manifest, described).encode())
    return write_atomic(out / MODEL, model.SerializeToString())


def networks(store: ModelStore, vid: str, manifest: dict) -> list[Network]:
    """The version's networks in head.weight's column order: its first, then its partners (an
    ensemble's head, a two-backbone head), each from the graph the store serves (sha256 checked)."""
    records = [manifest, *partners(manifest)]
    graphs: dict[int, onnx.ModelProto] = {}
    missing = []
    for i, record in enumerate(records):
        if record.get("onnx"):
            graphs[i] = onnx.load(str(store.onnx_path(vid, verify=True, partner=None if i == 0 else i - 1)))
        else:
            missing.append(i)
    if missing:
        graphs.update(torch_graphs(store, vid, missing))
    return [Network(graphs[i], record["backbone"]) for i, record in enumerate(records)]


def torch_graphs(store: ModelStore, vid: str, missing: list[int]) -> dict[int, onnx.ModelProto]:
    """The graphs of networks `missing` (indices into the version's networks), exported from PyTorch:
    only for a version published without them (before ONNX export, or when it failed)."""
    try:
        from . import onnx_export  # imports torch: only here
    except ImportError as exc:
        raise ExportError(
            f"version {vid!r} was published without its ONNX graph, and exporting it needs PyTorch ({exc})"
        ) from exc
    clf = store.load(vid)
    parts = cast("tuple[Backbone, ...]", getattr(clf.backbone, "parts", (clf.backbone,)))  # PyTorch ones
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in missing:
            try:
                path = onnx_export.export_features(parts[i].module, parts[i].image_size, Path(tmp) / f"{i}.onnx")
            except Exception as exc:  # noqa: BLE001 - any exporter failure, said plainly
                raise ExportError(
                    f"version {vid!r}: network {parts[i].id} cannot be exported to ONNX ({type(exc).__name__}: {exc})"
                ) from exc
            out[i] = onnx.load(str(path))
    return out


def input_names(nets: list[Network]) -> dict[tuple[int, str], str]:
    """{(size, interpolation): graph input name}: `image` for the first network's, then one per other."""
    names: dict[tuple[int, str], str] = {}
    for net in nets:
        size, how = net.source
        names.setdefault(net.source, "image" if not names else f"image_{size}_{how}")
    return names


class Builder:
    """The nodes and constants of the graph being composed, with names that cannot meet the
    networks' own (those are prefixed `net<i>.`)."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.consts: dict[str, str] = {}
        self.count = 0

    def const(self, key: str, value) -> str:
        if key not in self.consts:
            name = f"export.{key}"
            self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
            self.consts[key] = name
        return self.consts[key]

    def op(self, op_type: str, inputs: list[str], outputs: int = 1, name: str | None = None, **attrs):
        """Add one node; its output's name (or names, when `outputs` > 1)."""
        self.count += 1
        names = [name] if name else [f"export.{op_type}_{self.count}_{k}" for k in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, name=f"export.{op_type}_{self.count}", **attrs))
        return names[0] if outputs == 1 else names


def compose_graph(
    nets: list[Network], weight: np.ndarray, bias: np.ndarray, inputs: dict[tuple[int, str], str]
) -> onnx.ModelProto:
    """The whole version as one model: every network's graph, renamed `net<i>.*`, between the
    preprocessing and the head."""
    opset = max([MIN_OPSET, *(opset_of(n.graph) for n in nets)])
    b = Builder()
    features, graphs, functions = [], [], []
    for i, net in enumerate(nets):
        part = compose.add_prefix(at_opset(net.graph, opset), f"net{i}.")
        graphs.append(part.graph)
        functions.extend(part.functions)
        features.append(network_nodes(b, i, net, inputs[net.source], part.graph))
    joined = features[0] if len(features) == 1 else b.op("Concat", features, axis=1)
    logits = b.op(
        "Add",
        [
            b.op("MatMul", [joined, b.const("head_weight_t", weight.astype(np.float32).T)]),
            b.const("head_bias", bias.astype(np.float32)),
        ],
    )
    proba = b.op("Softmax", [logits], name=PROBABILITIES, axis=1)
    b.op("ArgMax", [proba], name=LABEL_INDEX, axis=1, keepdims=0)
    graph = helper.make_graph(
        b.nodes,
        "tasveer_version",
        [
            helper.make_tensor_value_info(name, TensorProto.UINT8, [BATCH, size, size, 3])
            for (size, _), name in inputs.items()
        ],
        [
            helper.make_tensor_value_info(PROBABILITIES, TensorProto.FLOAT, [BATCH, len(bias)]),
            helper.make_tensor_value_info(LABEL_INDEX, TensorProto.INT64, [BATCH]),
        ],
        initializer=[*b.initializers, *(t for g in graphs for t in g.initializer)],
        value_info=[v for g in graphs for v in g.value_info],
    )
    graph.sparse_initializer.extend(t for g in graphs for t in g.sparse_initializer)
    model = helper.make_model(
        graph,
        producer_name="tasveer export",
        functions=functions,
        opset_imports=merged_opsets([n.graph for n in nets], opset),
    )
    model.ir_version = max(n.graph.ir_version for n in nets)
    return model


def network_nodes(b: Builder, i: int, net: Network, image: str, graph: onnx.GraphProto) -> str:
    """The nodes around network `i`: preprocessing of `image` (uint8 NHWC), the flip average when
    its spec says `tta`; returns the name of its (N, F) features."""
    x = b.op("Div", [b.op("Cast", [image], to=TensorProto.FLOAT), b.const("255", np.float32(255.0))])
    x = b.op("Sub", [x, b.const(f"mean{i}", np.asarray(net.spec["mean"], dtype=np.float32))])
    x = b.op("Div", [x, b.const(f"std{i}", np.asarray(net.spec["std"], dtype=np.float32))])
    x = b.op("Transpose", [x], perm=[0, 3, 1, 2])
    tta = bool(net.spec.get("tta", False))
    if tta:  # the batch and its mirror images (last axis reversed) in one run, as flip_averaged
        flipped = b.op(
            "Slice",
            [
                x,
                b.const("flip_start", np.array([-1], np.int64)),
                b.const("flip_end", np.array([np.iinfo(np.int64).min], np.int64)),
                b.const("flip_axis", np.array([3], np.int64)),
                b.const("flip_step", np.array([-1], np.int64)),
            ],
        )
        x = b.op("Concat", [x, flipped], axis=0)
    [graph_in], [graph_out] = graph.input, graph.output
    if graph_in.name != f"net{i}.{INPUT}" or graph_out.name != f"net{i}.{OUTPUT}":
        raise ExportError(
            f"network {i}: graph reads {graph_in.name!r} and gives {graph_out.name!r}, not {INPUT!r} -> {OUTPUT!r}"
        )
    b.op("Identity", [x], name=graph_in.name)
    b.nodes.extend(graph.node)
    if not tta:
        return graph_out.name
    both = b.op("Split", [graph_out.name], outputs=2, axis=0, num_outputs=2)
    return b.op("Div", [b.op("Add", both), b.const("2", np.float32(2.0))])


def opset_of(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), MIN_OPSET)


def at_opset(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    return model if opset_of(model) == opset else version_converter.convert_version(model, opset)


def merged_opsets(models: list[onnx.ModelProto], opset: int) -> list[onnx.OperatorSetIdProto]:
    """The default domain at `opset`; any other domain a network uses at the highest version seen."""
    versions: dict[str, int] = {}
    for model in models:
        for o in model.opset_import:
            if o.domain not in ("", "ai.onnx"):
                versions[o.domain] = max(versions.get(o.domain, 0), o.version)
    return [helper.make_opsetid("", opset), *(helper.make_opsetid(d, v) for d, v in sorted(versions.items()))]
