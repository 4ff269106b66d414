"""Compression through the proxy (openai client, extra_body), POST /v1/compress, and the CLI."""

from __future__ import annotations

import httpx
import openai
import pytest

from middleware.cli import main as cli_main
from middleware.config import Settings
from middleware.server import create_app

from .conftest import serve_app_in_thread
from .test_compress import REPORT

SYSTEM = "You are a careful analyst. Answer in one word."
QUESTION = "How much did revenue grow?"
CHAT = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": REPORT + "\n\n" + QUESTION}]


@pytest.fixture(scope="module")
def url(local_backend):
    with serve_app_in_thread(create_app(Settings(), backend=local_backend)) as base:
        yield base


@pytest.fixture(scope="module")
def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def compress_report(body: dict) -> dict:
    [stage] = [s for s in body["promptfold"]["stages"] if s["stage"] == "compress"]
    return stage


def test_the_openai_client_asks_for_compression_with_extra_body(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="default",
        messages=CHAT,  # type: ignore[arg-type]
        max_tokens=2,
        temperature=0,
        extra_body={"promptfold": {"compress": {"rate": 0.5, "annotate": True}}},
    )
    stage = compress_report(reply.model_extra or {})
    assert stage["applied"] is True
    assert "[-" in stage["details"]["annotated"]  # what was dropped, in place
    assert stage["tokens_out"] < stage["tokens_in"]
    assert abs(stage["details"]["ratio"] - 0.5) <= 0.05
    # the model saw fewer prompt tokens than the full chat would take
    full = client.chat.completions.create(model="default", messages=CHAT, max_tokens=1, temperature=0)  # type: ignore[arg-type]
    assert reply.usage is not None and full.usage is not None
    assert reply.usage.prompt_tokens < full.usage.prompt_tokens


def test_a_bad_rate_is_a_400_naming_the_parameter(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="default",
            messages=CHAT,
            max_tokens=1,
            extra_body={"promptfold": {"compress": {"rate": 1.5}}},  # type: ignore[arg-type]
        )
    assert caught.value.body["param"] == "promptfold.compress.rate"  # type: ignore[index]


def test_an_unknown_compress_option_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(
            model="default",
            prompt=REPORT,
            max_tokens=1,
            extra_body={"promptfold": {"compress": {"ratio": 0.4}}},
        )
    assert caught.value.body["param"] == "promptfold.compress.ratio"  # type: ignore[index]


def test_the_bypass_header_skips_compression(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="default",
        messages=CHAT,  # type: ignore[arg-type]
        max_tokens=1,
        extra_body={"promptfold": {"compress": {"rate": 0.5}}},
        extra_headers={"x-promptfold-bypass": "1"},
    )
    assert (reply.model_extra or {})["promptfold"]["stages"] == []


def test_v1_compress_returns_messages_and_report_without_the_model(url: str) -> None:
    response = httpx.post(
        f"{url}/v1/compress",
        json={"messages": CHAT, "compress": {"rate": 0.4, "mode": "question_aware"}, "annotate": True},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    messages = body["messages"]
    assert messages[0] == {"role": "system", "content": SYSTEM}  # the system prompt stays
    assert messages[1]["content"].endswith(QUESTION)  # and so does the last question
    assert body["usage"]["compressed_tokens"] < body["usage"]["original_tokens"]
    assert compress_report(body)["details"]["mode"] == "question_aware"
    assert "[-" in body["annotated"]


def test_v1_compress_errors_are_clear_400s(url: str) -> None:
    cases = [
        ({"prompt": REPORT, "compress": {"mode": "question_aware"}}, "question"),
        ({"prompt": "   ", "compress": {"rate": 0.5}}, "prompt"),
        ({"prompt": REPORT, "compress": {"rate": 0}}, "compress.rate"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages"),
    ]
    for body, param in cases:
        response = httpx.post(f"{url}/v1/compress", json=body, timeout=60)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["param"] == param


def test_server_defaults_compress_requests_that_say_nothing(local_backend) -> None:
    settings = Settings(stage_defaults={"compress": {"rate": 0.5}})
    with serve_app_in_thread(create_app(settings, backend=local_backend)) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
        long = client.chat.completions.create(model="default", messages=CHAT, max_tokens=1)  # type: ignore[arg-type]
        assert compress_report(long.model_extra or {})["applied"] is True
        short = client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "Say yes."}], max_tokens=1
        )
        stage = compress_report(short.model_extra or {})
        assert stage["applied"] is False and "nothing to compress" in stage["skipped_reason"]


def test_the_cli_compresses_a_file_to_json(tmp_path, capsys, local_backend) -> None:
    import json

    path = tmp_path / "prompt.txt"
    path.write_text(REPORT)
    assert cli_main(["compress", str(path), "--rate", "0.4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert abs(data["ratio"] - 0.4) <= 0.04
    assert data["compressed_tokens"] < data["original_tokens"]


def test_cli_errors_are_one_line(tmp_path, capsys) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    assert cli_main(["compress", str(empty)]) == 2
    assert "empty" in capsys.readouterr().err
    assert cli_main(["compress", str(binary)]) == 2
    assert "not UTF-8 text" in capsys.readouterr().err
    assert cli_main(["compress", str(tmp_path / "missing.txt")]) == 2
    assert "cannot read" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["compress", str(empty), "--rate", "0"])
    assert "(0, 1]" in capsys.readouterr().err


def test_the_serving_backend_can_score_through_prompt_logprobs(url: str) -> None:
    response = httpx.post(
        f"{url}/v1/compress",
        json={"prompt": REPORT, "compress": {"rate": 0.5, "scorer": "backend"}},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert abs(body["usage"]["ratio"] - 0.5) <= 0.05
    assert compress_report(body)["details"]["scorer"] == "backend"


WHOLE_INSTRUCTION = (
    "Write a high-quality answer for the given question using only the provided search results."
)
WHOLE_QUESTION = "Question: how much did revenue grow in the third quarter\nAnswer:"
WHOLE_PROMPT = WHOLE_INSTRUCTION + "\n\n" + REPORT.replace("\n\n", "\n") + "\n\n" + WHOLE_QUESTION


def test_the_proxy_keeps_the_instruction_and_question_of_a_whole_prompt(url: str) -> None:
    question = "how much did revenue grow in the third quarter"
    for compress in ({"rate": 0.3, "question": question}, {"rate": 0.3}):
        response = httpx.post(
            f"{url}/v1/compress", json={"prompt": WHOLE_PROMPT, "compress": compress}, timeout=120
        )
        assert response.status_code == 200, response.text
        text = response.json()["prompt"]
        assert text.startswith(WHOLE_INSTRUCTION + "\n\n") and text.endswith("\n\n" + WHOLE_QUESTION)
        assert len(text) < 0.6 * len(WHOLE_PROMPT)
    chat = [{"role": "user", "content": WHOLE_PROMPT}]
    response = httpx.post(
        f"{url}/v1/compress", json={"messages": chat, "compress": {"rate": 0.3}}, timeout=120
    )
    assert response.status_code == 200, response.text
    content = response.json()["messages"][0]["content"]
    assert content.startswith(WHOLE_INSTRUCTION + "\n\n") and content.endswith("\n\n" + WHOLE_QUESTION)
