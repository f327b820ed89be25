"""A missing part of the machine (shared photos, a protocol capture, Chromium): a skip on a laptop,
a failure in CI (TASVEER_REQUIRE_ALL=1, set by .ci/run), where a missing part is a defect."""

import os

import pytest

REQUIRE_ALL = os.environ.get("TASVEER_REQUIRE_ALL") == "1"


def missing_part(reason: str):
    if REQUIRE_ALL:
        pytest.fail(f"TASVEER_REQUIRE_ALL=1: {reason}", pytrace=False)
    pytest.skip(reason)
