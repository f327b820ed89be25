"""The offline EfficientNet-Lite0 weights land in timm's architecture tensor by tensor, and the
result recognises ImageNet scenes in the shared photos."""
import timm
import torch
from timm.data import ImageNetInfo

from scenes import SCENES
from training import lite0
from training.backbones import create_backbone
from training.images import decode_image


def test_every_tensor_maps_one_to_one_with_matching_shape():
    source = torch.load(lite0.weights_path(), map_location="cpu", weights_only=True)
    model = timm.create_model(lite0.ARCH, pretrained=False, num_classes=1000)
    mapped = lite0.map_keys(source, model)
    target = model.state_dict()
    assert len(mapped) == len(source) == len(target)  # one-to-one, nothing dropped or invented
    assert set(mapped) == set(target)
    for key, tensor in mapped.items():
        assert tensor.shape == target[key].shape, key
    loaded = lite0.load_imagenet_model().state_dict()
    for key in target:  # the values themselves arrived, not just the names
        assert torch.equal(loaded[key], mapped[key]), key


def test_preprocessing_matches_the_weights():
    b = create_backbone("efficientnet_lite0")
    assert (b.mean, b.std, b.interpolation, b.image_size) == ((0.5,) * 3, (0.5,) * 3, "bicubic", 224)
    # TensorFlow SAME padding (timm's tf_ variant), which the weights were trained with
    assert type(b.module.conv_stem).__name__ == "Conv2dSame"


def _top5(cls: str, n: int = 6):
    info = ImageNetInfo()
    model = lite0.load_imagenet_model()
    b = create_backbone("efficientnet_lite0")
    files = sorted((SCENES / cls).glob("*.jpg"))[:n]
    x = torch.stack([b.to_tensor(decode_image(f.read_bytes(), f.name)) for f in files])
    with torch.inference_mode():
        top = model(x).softmax(1).topk(5).indices
    return [{info.index_to_description(int(i)).split(",")[0] for i in row} for row in top]


def test_imagenet_predictions_are_plausible():
    coast = {"seashore", "sandbar", "promontory", "lakeside", "breakwater", "cliff", "beacon", "dock"}
    highland = {"alp", "valley", "volcano", "mountain tent", "ski", "ibex", "cliff", "iceberg", "geyser"}
    sea = _top5("sea")
    assert sum(bool(top & coast) for top in sea) >= 4, sea
    for cls in ("mountain", "glacier"):
        tops = _top5(cls)
        assert sum(bool(top & highland) for top in tops) >= 5, (cls, tops)
    # ImageNet-1k has no 'tree' class: forests land on outdoor classes, never on coast or highland
    forest = _top5("forest")
    assert sum(bool(top & coast) for top in forest) <= 2, forest
