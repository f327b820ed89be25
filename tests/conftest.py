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

import pytest  # noqa: E402

from lsfixture import label_studio, shared_backend, shared_data, start_backend  # noqa: E402,F401

# Under TASVEER_REQUIRE_ALL=1 (set by .ci/run) a test that would skip because a part is missing
# (Chromium, the shared photos, a service) fails instead: in CI a missing part is a defect, not a
# reason to pass. On a laptop `make test` still skips such tests, each with its reason.
REQUIRE_ALL = os.environ.get("TASVEER_REQUIRE_ALL") == "1"

# The two longest files (~4.5 and ~2.5 minutes of a worker's time, `--durations`) start first: with
# files dealt to workers in collection order, a long one dealt last keeps one worker busy after the
# others are done (longest first is the classic cure for that straggler).
LONGEST_FIRST = ("test_scale_labelstudio.py", "test_browser_first_open.py")


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file's tests keep their order


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, but TASVEER_REQUIRE_ALL=1 makes a missing part a failure: {reason}"
