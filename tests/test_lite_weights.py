"""The offline EfficientNet-Lite0/1/2 weights land in timm's architectures tensor by tensor, and the
results recognise ImageNet scenes in the shared photos."""

import numpy as np
import pytest
import timm
import torch
from timm.data import ImageNetInfo

from scenes import SCENES
from training import lite
from training.backbones import create_backbone
from training.images import decode_image

VARIANTS = list(lite.VARIANTS)


@pytest.mark.parametrize("name", VARIANTS)
def test_every_tensor_maps_one_to_one_with_matching_shape(name):
    source = torch.load(lite.weights_path(name), map_location="cpu", weights_only=True)
    model = timm.create_model(lite.VARIANTS[name][0], pretrained=False, num_classes=1000)
    mapped = lite.map_keys(source, model)
    target = model.state_dict()
    assert len(mapped) == len(source) == len(target)  # one-to-one, nothing dropped or invented
    assert set(mapped) == set(target)
    for key, tensor in mapped.items():
        assert tensor.shape == target[key].shape, key
    loaded = lite.load_imagenet_model(name).state_dict()
    for key in target:  # the values themselves arrived, not just the names
        assert torch.equal(loaded[key], mapped[key]), key


@pytest.mark.parametrize("name, size", [(n, v[1]) for n, v in lite.VARIANTS.items()])
def test_preprocessing_matches_the_weights(name, size):
    b = create_backbone(name)
    assert (b.mean, b.std, b.interpolation, b.image_size) == ((0.5,) * 3, (0.5,) * 3, "bicubic", size)
    # TensorFlow SAME padding (timm's tf_ variant), which the weights were trained with
    assert type(b.module.conv_stem).__name__ == "Conv2dSame"
    assert b.id == f"{name}@imagenet"


def _top5(name: str, cls: str, n: int = 6):
    info = ImageNetInfo()
    model = lite.load_imagenet_model(name)
    b = create_backbone(name)
    files = sorted((SCENES / cls).glob("*.jpg"))[:n]
    x = torch.from_numpy(np.stack([b.preprocessing.array(decode_image(f.read_bytes(), f.name)) for f in files]))
    with torch.inference_mode():
        top = model(x).softmax(1).topk(5).indices
    return [{info.index_to_description(int(i)).split(",")[0] for i in row} for row in top]


@pytest.mark.parametrize("name", VARIANTS)
def test_imagenet_predictions_are_plausible(name):
    coast = {"seashore", "sandbar", "promontory", "lakeside", "breakwater", "cliff", "beacon", "dock"}
    highland = {"alp", "valley", "volcano", "mountain tent", "ski", "ibex", "cliff", "iceberg", "geyser"}
    sea = _top5(name, "sea")
    assert sum(bool(top & coast) for top in sea) >= 4, sea
    for cls in ("mountain", "glacier"):
        tops = _top5(name, cls)
        assert sum(bool(top & highland) for top in tops) >= 5, (cls, tops)
    # ImageNet-1k has no 'tree' class: forests land on outdoor classes (a lakeside, a fence, a
    # valley), hardly ever on the open sea's
    forest = _top5(name, "forest")
    open_sea = coast - {"lakeside", "cliff"}
    assert sum(bool(top & open_sea) for top in forest) <= 1, forest
