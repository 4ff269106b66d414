"""Schema-driven fuzzing (schemathesis + hypothesis) of every operation in the proxy's OpenAPI document:
no request, however odd, gets a 5xx. The proxy serves a FAKE OpenAI-compatible backend here
(`tests/fakes/fake_openai.py`, answers in microseconds), so that a thousand requests cost seconds while
every edge of the proxy (parsing, options, stages, corpora, gists, compression on the packaged SmolLM2)
runs for real.

CI runs a sample (`SAMPLE` examples per operation, derandomized: the same cases every run);
`PROMPTFOLD_FAULTS_FULL=1 python -m pytest tests/faults/test_fuzz.py` runs `FULL` per operation
(about 1,000 requests over the document's operations), randomized. The statuses seen are printed at the
end of the module (and written to $PROMPTFOLD_FAULTS_REPORT as JSON when that is set)."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from middleware.config import Settings
from middleware.server import create_app

from ..conftest import serve_app_in_thread
from ..fakes import serve_in_thread as serve_fake
from ..fakes.fake_openai import FakeOpenAIServer
from .conftest import FULL, full_or

SAMPLE, PER_OPERATION = 8, 60  # 17 operations: ~140 requests in CI, ~1,000 in the full run
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi())
STATUSES: Counter[str] = Counter()
SERVER_ERRORS: list[str] = []


@pytest.fixture(scope="module")
def fuzzed_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    fake = FakeOpenAIServer()
    with serve_fake(fake.app) as fake_url:
        settings_ = Settings(
            backend=f"openai://{fake_url.removeprefix('http://')}/v1",
            data_dir=tmp_path_factory.mktemp("fuzz"),
            max_compress_tokens=2048,  # fuzzed prompts are short; this keeps a long one cheap
            backend_timeout_s=10,
        )
        with serve_app_in_thread(create_app(settings_)) as url:
            yield url
    _report()


def _report() -> None:
    total = sum(STATUSES.values())
    summary = {"requests": total, "statuses": dict(sorted(STATUSES.items())), "server_errors": SERVER_ERRORS}
    print(f"\nfuzz: {total} requests, statuses {summary['statuses']}")
    target = os.environ.get("PROMPTFOLD_FAULTS_REPORT")
    if target:
        Path(target).write_text(json.dumps(summary, indent=2))


@schema.parametrize()
@settings(
    max_examples=full_or(SAMPLE, PER_OPERATION),
    deadline=None,
    derandomize=not FULL,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_fuzzed_request_gets_a_5xx(case: schemathesis.Case, fuzzed_proxy: str) -> None:
    _check(case, fuzzed_proxy)
    if isinstance(case.body, dict) and "model" in case.body and case.body["model"] != "default":
        case.body = {**case.body, "model": "default"}  # a random name stops at 404: try the rest too
        _check(case, fuzzed_proxy)


def _check(case: schemathesis.Case, fuzzed_proxy: str) -> None:
    response = case.call(base_url=fuzzed_proxy, timeout=60)
    STATUSES[str(response.status_code)] += 1
    if response.status_code >= 500:
        SERVER_ERRORS.append(
            f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
        )
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text[:500]}"
    assert response.headers.get("x-request-id")
    if response.status_code >= 400 and response.status_code != 405:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}


def test_the_openapi_document_describes_bodies_and_errors() -> None:
    document = create_app(Settings()).openapi()
    operations = [(p, m, op) for p, item in document["paths"].items() for m, op in item.items()]
    assert len(operations) >= 15
    for path, method, operation in operations:
        if method == "post":
            assert "application/json" in operation["requestBody"]["content"], path
        for status in ("400", "401", "413", "500", "502", "503"):
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (path, status)
    chat = document["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]
    assert chat["schema"] == {"$ref": "#/components/schemas/ChatCompletionRequest"}
    assert "messages" in document["components"]["schemas"]["ChatCompletionRequest"]["properties"]
