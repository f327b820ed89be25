"""Shared pytest fixtures. Others may append fixtures here (keep bigger ones in their own module
under tests/ and import them below, like lsfixture)."""
import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from lsfixture import label_studio, shared_data, start_backend  # noqa: E402,F401
