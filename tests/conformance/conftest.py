"""The conformance suite: OpenAI-API behaviours checked from the client side, with the real `openai`
client, LangChain and LiteLLM, against a running proxy.

By default it starts `promptfold serve --backend local` (the embedded SmolLM2). Against any other proxy:

    PROMPTFOLD_CONFORMANCE_BASE_URL=http://HOST:PORT/v1 python -m pytest tests/conformance \\
        --conformance-report bench/results/conformance_sglang

writes `<report>.json` and `<report>.md` (one row per test: outcome, seconds, the reason of a skip or
failure; the option is declared in tests/conftest.py, or set PROMPTFOLD_CONFORMANCE_REPORT). Set
PROMPTFOLD_CONFORMANCE_LABEL to name the setup in the report's title.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

BASE_URL_ENV = "PROMPTFOLD_CONFORMANCE_BASE_URL"


@pytest.fixture(scope="session")
def base_url() -> Iterator[str]:
    """The proxy's /v1 URL: the one in PROMPTFOLD_CONFORMANCE_BASE_URL, or a fresh embedded-engine proxy."""
    given = os.environ.get(BASE_URL_ENV)
    if given:
        yield given.rstrip("/")
        return
    from tests.conftest import run_proxy

    with run_proxy("--backend", "local") as url:
        yield url


@pytest.fixture(scope="session")
def root_url(base_url: str) -> str:
    return base_url.removesuffix("/v1")


@pytest.fixture(scope="session")
def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=base_url, api_key=os.environ.get("PROMPTFOLD_API_KEY", "unused"), max_retries=0
    )


@pytest.fixture(scope="session")
def model(client: openai.OpenAI) -> str:
    """The served model's name, as /v1/models lists it first."""
    return client.models.list().data[0].id


@pytest.fixture(scope="session")
def http(base_url: str) -> Iterator[httpx.Client]:
    key = os.environ.get("PROMPTFOLD_API_KEY", "unused")
    with httpx.Client(base_url=base_url, timeout=600, headers={"authorization": f"Bearer {key}"}) as session:
        yield session


# --- the summary ---------------------------------------------------------------------------------

_ROWS: dict[str, dict[str, object]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "tests/conformance/" not in report.nodeid.replace("\\", "/"):
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        reason = ""
        if report.outcome == "skipped" and isinstance(report.longrepr, tuple):
            reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        elif report.outcome == "failed":
            reason = str(getattr(report.longrepr, "reprcrash", None) and report.longrepr.reprcrash.message)  # type: ignore[union-attr]
        _ROWS[report.nodeid] = {
            "test": report.nodeid.split("tests/conformance/")[-1],
            "outcome": report.outcome,
            "seconds": round(report.duration, 2),
            "reason": reason.splitlines()[0][:300] if reason else "",
        }


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = session.config.getoption("--conformance-report", default=None)
    if not target or not _ROWS:
        return
    rows = sorted(_ROWS.values(), key=lambda r: str(r["test"]))
    counts = {k: sum(1 for r in rows if r["outcome"] == k) for k in ("passed", "failed", "skipped")}
    label = (
        os.environ.get("PROMPTFOLD_CONFORMANCE_LABEL") or os.environ.get(BASE_URL_ENV) or "embedded engine"
    )
    summary = {
        "label": label,
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "host": platform.node(),
        "counts": counts,
        "tests": rows,
    }
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        f"# Conformance: {label}",
        "",
        f"{summary['when']}: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped.",
        "",
        "| test | outcome | s | reason |",
        "| --- | --- | ---: | --- |",
        *(
            f"| `{r['test']}` | {r['outcome']} | {r['seconds']} | {str(r['reason']).replace('|', '/')} |"
            for r in rows
        ),
    ]
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
