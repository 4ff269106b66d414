"""Corpora over HTTP and retrieval-augmented chat, through the proxy served in a thread on the
embedded SmolLM2, with the real `openai` client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from middleware.config import Settings
from middleware.server import create_app
from tests.conftest import serve_app_in_thread

from .conftest import litm_prompt, multidoc_rows

HANDBOOK = (
    "Employees get 25 days of paid leave per year. Leave must be booked two weeks ahead.\n\n"
    "The office opens at 8 am and closes at 6 pm."
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def base_url(local_backend, data_dir: Path) -> Iterator[str]:
    settings = Settings(data_dir=data_dir)
    with serve_app_in_thread(create_app(settings, backend=local_backend)) as url:
        yield url


@pytest.fixture(scope="module")
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def docs(http: httpx.Client) -> str:
    assert http.post("/v1/corpora", json={"name": "docs"}).status_code == 201
    added = http.post(
        "/v1/corpora/docs/documents",
        json={"documents": [{"id": "handbook", "text": HANDBOOK, "source": "handbook.txt"}]},
    )
    assert added.status_code == 200 and added.json()["added"] == ["handbook"]
    files = {"file": ("cafe.md", b"The cafeteria serves lunch from noon to 2 pm.", "text/markdown")}
    uploaded = http.post("/v1/corpora/docs/documents", files=files)
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["added"] == ["cafe.md"]
    return "docs"


@pytest.fixture(scope="module")
def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0)


def test_search_route_returns_passages_with_sources_offsets_and_scores(http: httpx.Client, docs: str) -> None:
    found = http.get(f"/v1/corpora/{docs}/search", params={"q": "when is lunch served", "k": 2}).json()
    assert [p["document_id"] for p in found["data"]] == ["cafe.md", "handbook"]
    best = found["data"][0]
    assert best["source"] == "cafe.md" and best["start"] == 0 and best["score"] > found["data"][1]["score"]
    listing = http.get("/v1/corpora").json()["data"]
    assert [(c["name"], c["documents"], c["index"]) for c in listing] == [("docs", 2, "flat-ip")]


def test_bad_corpus_requests_get_clear_4xx_errors(http: httpx.Client, docs: str) -> None:
    empty = http.get(f"/v1/corpora/{docs}/search", params={"q": "  "})
    assert empty.status_code == 400 and empty.json()["error"]["param"] == "q"
    unknown = http.get("/v1/corpora/nope/search", params={"q": "x"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "corpus_not_found"
    binary = http.post(
        f"/v1/corpora/{docs}/documents", files={"file": ("logo.png", b"\x89PNG\r\n\x1a\n\x00\x00")}
    )
    assert binary.status_code == 415 and "logo.png" in binary.json()["error"]["message"]
    latin1 = http.post(f"/v1/corpora/{docs}/documents", files={"file": ("old.txt", "café".encode("latin-1"))})
    assert latin1.status_code == 415 and "not UTF-8" in latin1.json()["error"]["message"]
    assert http.post("/v1/corpora", json={"name": "docs"}).status_code == 409
    assert http.post("/v1/corpora", json={"name": "../x"}).status_code == 400
    no_model = http.post("/v1/corpora", json={"name": "x", "embedding_model": "/no/such/model"})
    assert no_model.status_code == 400 and "does not exist" in no_model.json()["error"]["message"]
    assert http.post(f"/v1/corpora/{docs}/documents", json={"documents": []}).status_code == 400
    assert http.delete(f"/v1/corpora/{docs}/documents/nope").status_code == 404
    assert http.delete("/v1/corpora/nope").status_code == 404


def test_deleting_a_document_and_a_corpus(http: httpx.Client) -> None:
    assert http.post("/v1/corpora", json={"name": "scratch"}).status_code == 201
    body = {"documents": [{"id": "a", "text": "Alpha text."}, {"id": "b", "text": "Beta text."}]}
    assert http.post("/v1/corpora/scratch/documents", json=body).status_code == 200
    assert http.delete("/v1/corpora/scratch/documents/a").json()["deleted"] is True
    assert [d["id"] for d in http.get("/v1/corpora/scratch/documents").json()["data"]] == ["b"]
    assert http.delete("/v1/corpora/scratch").json()["deleted"] is True
    assert http.get("/v1/corpora/scratch").status_code == 404


def test_chat_with_a_corpus_gets_the_passages_as_context_and_the_report_names_them(
    client: openai.OpenAI, docs: str
) -> None:
    question = [{"role": "user", "content": "How many days of paid leave do employees get per year?"}]
    plain = client.chat.completions.create(model="default", messages=question, max_tokens=1, temperature=0)
    reply = client.chat.completions.create(
        model="default",
        messages=question,
        max_tokens=12,
        temperature=0,
        extra_body={"promptfold": {"retrieval": {"corpus": docs, "top_k": 1}}},
    )
    [stage] = reply.model_extra["promptfold"]["stages"]
    assert stage["stage"] == "retrieval" and stage["applied"]
    [passage] = stage["details"]["passages"]
    assert (passage["document_id"], passage["source"], passage["rank"]) == ("handbook", "handbook.txt", 1)
    assert reply.usage.prompt_tokens >= plain.usage.prompt_tokens + passage["tokens"]
    assert stage["tokens_out"] - stage["tokens_in"] >= passage["tokens"]
    assert "25" in (reply.choices[0].message.content or "")


def test_chat_with_an_unknown_corpus_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(
            model="default",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=1,
            extra_body={"promptfold": {"retrieval": {"corpus": "nope"}}},
        )
    with pytest.raises(openai.BadRequestError, match="top_k"):
        client.chat.completions.create(
            model="default",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=1,
            extra_body={"promptfold": {"retrieval": {"top_k": 0}}},
        )


def test_chat_whose_prompt_carries_twenty_documents_keeps_the_relevant_ones(client: openai.OpenAI) -> None:
    [row] = multidoc_rows("dev", 1)
    reply = client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": litm_prompt(row)}],
        max_tokens=1,
        temperature=0,
        extra_body={"promptfold": {"retrieval": {"top_k": 3}}},
    )
    [stage] = reply.model_extra["promptfold"]["stages"]
    assert stage["details"]["mode"] == "in_prompt" and stage["details"]["documents"] == 20
    kept = [d["number"] for d in stage["details"]["kept"]]
    assert len(kept) == 3 and row["gold_index"] + 1 in kept
    assert stage["tokens_out"] < stage["tokens_in"] / 4
    assert reply.usage.prompt_tokens < stage["tokens_in"]


def test_a_request_without_retrieval_options_is_untouched(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "hi"}], max_tokens=1
    )
    assert reply.model_extra["promptfold"]["stages"] == []


def test_a_streamed_chat_gets_the_passages_too(client: openai.OpenAI, docs: str) -> None:
    chunks = list(
        client.chat.completions.create(
            model="default",
            messages=[{"role": "user", "content": "When does the cafeteria serve lunch?"}],
            max_tokens=4,
            temperature=0,
            stream=True,
            extra_body={"promptfold": {"retrieval": {"corpus": docs, "top_k": 1}}},
        )
    )
    [stage] = chunks[-1].model_extra["promptfold"]["stages"]
    assert stage["details"]["passages"][0]["source"] == "cafe.md"


def test_documents_added_outside_the_server_are_searchable_at_once(
    http: httpx.Client, data_dir: Path, count
) -> None:
    from middleware.retrieval.catalog import Corpora
    from middleware.retrieval.corpus import DocumentInput

    assert http.post("/v1/corpora", json={"name": "shared"}).status_code == 201
    assert http.get("/v1/corpora/shared/search", params={"q": "gym"}).json()["data"] == []
    # What `promptfold corpus add` does from another process: its own catalog on the same folder.
    Corpora(data_dir / "corpora").get("shared").add([DocumentInput("gym", "The gym opens at 6 am.")], count)
    found = http.get("/v1/corpora/shared/search", params={"q": "when does the gym open"}).json()["data"]
    assert [p["document_id"] for p in found] == ["gym"]
