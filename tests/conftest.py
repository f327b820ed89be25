"""Shared pytest fixtures. Others may append fixtures here (keep bigger ones in their own module
under tests/ and import them below, like lsfixture)."""
import os
import sys
from pathlib import Path

# No model hub is reachable here or in CI: make huggingface_hub fail at once instead of retrying
# for a minute (must be set before anything imports timm / huggingface_hub).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from lsfixture import label_studio, shared_data, start_backend  # noqa: E402,F401
