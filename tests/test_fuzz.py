"""Fuzz the HTTP API from its OpenAPI schema (schemathesis): whatever the body, path or query, the
backend never answers a server error. Real app over real HTTP, with a trained version of project 1
so that predict, rollback and the confusion matrix run their real code. Few examples per route (the
whole file takes well under a minute); hypothesis's database is off so runs are repeatable."""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from backend.settings import Settings
from test_backend_helpers import BackendThread, post_json, protocol_requests
from test_backend_protocol import publish_direct, setup_body


@pytest.fixture(scope="module")
def fuzz_backend(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("fuzz") / "backend"
    with BackendThread(Settings(data_dir=data_dir, fetch_timeout=2.0)) as backend:
        body = setup_body(protocol_requests(), "http://127.0.0.1:9")  # a Label Studio that is not there
        assert post_json(backend.url + "/setup", body).status_code == 200
        publish_direct(backend.service, "1", per_class=2)
        yield backend


def test_no_server_error(fuzz_backend):
    """Every operation of the schema, a dozen generated requests each (schemathesis's pytest plugin
    does not run under pytest 9, so the strategies are driven with hypothesis directly)."""
    schema = schemathesis.openapi.from_dict(fuzz_backend.app.openapi())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    failures, seen = [], {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            response = case.call(base_url=fuzz_backend.url, timeout=30)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.body!r:.200}: "
                    f"{response.status_code} {response.text[:200]}"
                )

        run()
    assert not failures, "\n".join(failures)
    print("answers by status:", dict(sorted(seen.items())))
    assert sum(seen.values()) >= 5 * len(operations)
    assert requests.get(fuzz_backend.url + "/health", timeout=5).status_code == 200
