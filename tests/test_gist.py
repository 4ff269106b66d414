"""Gists on the real SmolLM2: a 273-token system prompt distilled into 4 vectors in a few steps, then
stored, served through the proxy to the real `openai` client, and refused clearly where they cannot be."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import openai
import pytest
import pytest_asyncio
import torch

from backend import SamplingParams
from middleware.compress.gist import (
    GistNotFound,
    GistStore,
    PrefixSpec,
    PrefixTooShort,
    TooManyGistTokens,
    WrongModel,
)
from middleware.compress.gist.data import read_queries
from middleware.compress.gist.distill import TrainConfig, initial_vectors, train_gist
from middleware.compress.gist.evaluate import teacher_forced_fidelity
from middleware.compress.gist.stage import GistStage
from middleware.compress.gist.store import Gist, gist_id
from middleware.compress.gist.train import GistJob, make_gist, prepare
from middleware.config import Settings
from middleware.options import RequestOptions
from middleware.pipeline import Pipeline, Request
from middleware.server import create_app

DATA = Path(__file__).parent / "data"
PREFIX = (DATA / "gist_prefix.txt").read_text()
QUERIES = read_queries(DATA / "gist_queries.txt")
CONFIG = TrainConfig(tokens=4, max_steps=12, eval_every=4, patience=3)
QUESTION = "When do you open on Saturday?"


def chat(question: str = QUESTION) -> list[dict[str, str]]:
    return [{"role": "system", "content": PREFIX}, {"role": "user", "content": question}]


@pytest_asyncio.fixture(scope="module")
async def prepared(local_backend):
    return await prepare(
        local_backend, GistJob(PrefixSpec(PREFIX), CONFIG, queries=QUERIES, max_answer_tokens=12)
    )


@pytest_asyncio.fixture(scope="module")
async def trained(local_backend, prepared) -> Gist:
    job = GistJob(PrefixSpec(PREFIX), CONFIG, queries=QUERIES, max_answer_tokens=12)
    return await make_gist(local_backend, job, prepared=prepared)


def foreign_copy(gist: Gist) -> Gist:
    """The same gist as if trained for other weights."""
    other_hash = "f" * 64
    record = gist.record.model_copy(
        update={
            "id": gist_id(gist.record.prefix_hash, other_hash, gist.record.tokens),
            "model_hash": other_hash,
        }
    )
    return Gist(record, gist.vectors, gist.prefix_ids)


# --- training -----------------------------------------------------------------------------------------


def test_training_lowers_the_kl_on_held_out_queries(local_backend, prepared, trained):
    record = trained.record
    assert record.loss < 0.8 * record.training["initial_loss"]
    model, ids = local_backend.loaded, prepared.prefix.token_ids
    before = teacher_forced_fidelity(model, ids, initial_vectors(model, ids, 4, "edges", 0), prepared.heldout)
    assert record.eval.all_positions_kl < before.all_positions_kl
    assert record.eval.queries == len(prepared.heldout) >= 2
    assert 0.0 <= record.eval.answers_equal <= 1.0
    assert record.prefix_tokens == len(prepared.prefix) > 200 and record.tokens == 4


def test_training_is_seeded_and_keeps_the_best_vectors_when_it_stops_early(local_backend, prepared):
    model, ids = local_backend.loaded, prepared.prefix.token_ids
    diverging = TrainConfig(tokens=4, max_steps=6, eval_every=1, patience=2, learning_rate=5.0)
    seen = []
    runs = [train_gist(model, ids, prepared.train[:4], prepared.heldout[:2], diverging, progress=seen.append)]
    runs.append(train_gist(model, ids, prepared.train[:4], prepared.heldout[:2], diverging))
    assert torch.equal(runs[0].vectors, runs[1].vectors)
    assert runs[0].history == runs[1].history
    first = runs[0]
    assert first.stopped_early and first.steps < 6
    best_step, best_loss = min(((s, h) for s, _, h in first.history), key=lambda pair: pair[1])
    assert (first.best_step, first.heldout_loss) == (best_step, best_loss)
    assert [p.step for p in seen] == list(range(first.steps + 1))


async def test_a_prefix_too_short_or_a_gist_too_large_is_refused_before_any_work(local_backend):
    with pytest.raises(PrefixTooShort, match="tokens; a gist is worth training from 64"):
        await prepare(local_backend, GistJob(PrefixSpec("You are a pirate. " * 5), TrainConfig(tokens=4)))
    with pytest.raises(TooManyGistTokens, match="not smaller than the prefix"):
        await prepare(local_backend, GistJob(PrefixSpec(PREFIX), TrainConfig(tokens=400)))


# --- the store ----------------------------------------------------------------------------------------


def test_the_store_round_trips_vectors_and_metadata_and_deletes(tmp_path, trained):
    store = GistStore(tmp_path)
    record = store.save(trained)
    assert record.id.startswith("g-") and record.id.endswith("-k4")
    assert (tmp_path / f"{record.id}.safetensors").is_file() and (tmp_path / f"{record.id}.json").is_file()
    assert [r.id for r in store.records()] == [record.id]
    loaded = store.load(record.id)
    assert torch.equal(loaded.vectors, trained.vectors) and loaded.prefix_ids == trained.prefix_ids
    assert loaded.record == trained.record
    shown = store.record(record.id)
    assert (
        shown.model_id == "SmolLM2-135M-Instruct" and len(shown.model_hash) == 64 and shown.eval is not None
    )
    store.delete(record.id)
    assert store.records() == []
    with pytest.raises(GistNotFound):
        store.load(record.id)


def test_a_gist_for_other_weights_is_refused_by_name(trained):
    foreign = foreign_copy(trained).record
    with pytest.raises(WrongModel, match="was trained for model SmolLM2-135M-Instruct"):
        foreign.check_model(trained.record.model_hash, "SmolLM2-135M-Instruct")


# --- serving ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gist_proxy(local_backend, trained, tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    store = GistStore(data / "gists")
    store.save(trained)
    store.save(foreign_copy(trained))
    from tests.conftest import serve_app_in_thread

    with serve_app_in_thread(create_app(Settings(data_dir=data), backend=local_backend)) as url:
        yield url, store


@pytest.fixture(scope="module")
def client(gist_proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=gist_proxy[0] + "/v1", api_key="unused", max_retries=0)


def test_a_chat_with_the_stored_system_prompt_is_served_with_the_gist(client, trained):
    raw = client.chat.completions.with_raw_response.create(
        model="default", messages=chat(), temperature=0, max_tokens=6
    )
    reply = raw.parse()
    [report] = reply.model_extra["promptfold"]["stages"]
    assert report["stage"] == "gist" and report["applied"], report
    assert report["details"]["gist"] == trained.record.id  # the gist for this model, not the foreign one
    assert raw.headers["x-promptfold-stages"] == "gist"
    full = client.chat.completions.create(
        model="default",
        messages=chat(),
        temperature=0,
        max_tokens=6,
        extra_body={"promptfold": {"gist": False}},
    )
    assert (
        reply.usage.prompt_tokens
        == report["tokens_out"]
        == full.usage.prompt_tokens - trained.record.prefix_tokens + 4
    )
    assert full.model_extra["promptfold"]["stages"][0]["skipped_reason"] == "turned off by the request"
    assert reply.choices[0].message.content


def test_a_streamed_chat_uses_the_gist_too(client):
    stream = client.chat.completions.create(
        model="default", messages=chat("Are you open on Sunday?"), max_tokens=4, stream=True, temperature=0
    )
    chunks = list(stream)
    [report] = chunks[-1].model_extra["promptfold"]["stages"]
    assert report["applied"] and report["tokens_out"] < 40


def test_other_prompts_pass_untouched(client):
    reply = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "Hi"}], max_tokens=2
    )
    assert reply.model_extra["promptfold"]["stages"] == []


def test_asking_for_an_unknown_gist_is_404_and_for_another_models_gist_422(client, trained):
    with pytest.raises(openai.NotFoundError, match="no gist"):
        client.chat.completions.create(
            model="default",
            messages=chat(),
            max_tokens=2,
            extra_body={"promptfold": {"gist": {"id": "g-000000000000-00000000-k4"}}},
        )
    foreign = foreign_copy(trained).record.id
    with pytest.raises(openai.UnprocessableEntityError, match="trained for model"):
        client.chat.completions.create(
            model="default",
            messages=chat(),
            max_tokens=2,
            extra_body={"promptfold": {"gist": {"id": foreign}}},
        )
    with pytest.raises(openai.BadRequestError, match=r"promptfold\.gist"):
        client.chat.completions.create(
            model="default", messages=chat(), max_tokens=2, extra_body={"promptfold": {"gist": {"k": 4}}}
        )


def test_the_gists_routes_list_show_refuse_and_delete(gist_proxy, trained):
    import httpx

    url = gist_proxy[0]
    listed = httpx.get(f"{url}/v1/gists").json()
    assert listed["object"] == "list" and trained.record.id in [g["id"] for g in listed["data"]]
    shown = httpx.get(f"{url}/v1/gists/{trained.record.id}").json()
    assert shown["tokens"] == 4 and shown["prefix_tokens"] == 273
    too_short = httpx.post(f"{url}/v1/gists", json={"prefix": "Be brief and kind.", "tokens": 4}, timeout=60)
    assert too_short.status_code == 400 and too_short.json()["error"]["param"] == "prefix"
    too_many = httpx.post(f"{url}/v1/gists", json={"prefix": PREFIX, "tokens": 300}, timeout=60)
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "tokens"
    assert httpx.get(f"{url}/v1/gists/g-000000000000-00000000-k4").status_code == 404
    foreign = foreign_copy(trained).record.id
    assert httpx.delete(f"{url}/v1/gists/{foreign}").json() == {
        "id": foreign,
        "object": "gist",
        "deleted": True,
    }
    assert httpx.delete(f"{url}/v1/gists/{foreign}").status_code == 404


def test_posting_a_prefix_trains_and_stores_a_gist(gist_proxy):
    import httpx

    url, store = gist_proxy
    body = {
        "prefix": PREFIX + "\nAlways answer in English.",
        "tokens": 2,
        "queries": QUERIES[:4],
        "max_steps": 2,
        "max_answer_tokens": 4,
    }
    created = httpx.post(f"{url}/v1/gists", json=body, timeout=600)
    assert created.status_code == 201, created.text
    record = created.json()
    assert record["tokens"] == 2 and record["training"]["steps_run"] == 2 and record["eval"]["queries"] == 1
    assert record["id"] in [r.id for r in store.records()]


# --- backends that cannot take the gist ----------------------------------------------------------------


class NoEmbedsBackend:
    """The real embedded engine with the input-embeddings capability switched off (as an OpenAI-compatible
    server or SGLang with its radix cache on would declare)."""

    def __init__(self, inner):
        self.inner = inner
        self.name, self.model_id, self.loaded = "openai", inner.model_id, inner.loaded
        self.capabilities = dataclasses.replace(inner.capabilities, input_embeds=False)

    def __getattr__(self, name):
        return getattr(self.inner, name)


async def test_a_backend_without_input_embeddings_runs_the_request_unchanged_and_says_why(
    local_backend, trained, tmp_path
):
    store = GistStore(tmp_path)
    store.save(trained)
    backend = NoEmbedsBackend(local_backend)
    pipeline = Pipeline(backend, stages=[GistStage(backend, store)])
    done = await pipeline.complete(Request(SamplingParams(temperature=0, max_tokens=1), messages=chat()))
    [report] = done.report.stages
    assert not report.applied and "cannot take input embeddings" in report.skipped_reason
    assert done.report.prompt_tokens > 273


async def test_only_a_gist_of_another_model_is_skipped_with_the_reason(local_backend, trained, tmp_path):
    store = GistStore(tmp_path)
    store.save(foreign_copy(trained))
    pipeline = Pipeline(local_backend, stages=[GistStage(local_backend, store)])
    request = Request(SamplingParams(max_tokens=1), messages=chat(), options=RequestOptions())
    done = await pipeline.complete(request)
    [report] = done.report.stages
    assert not report.applied and "trained for model SmolLM2-135M-Instruct" in report.skipped_reason


# --- SGLang (the FAKE server: SGLang needs a GPU; the real one runs in bench/gpu/gist_sglang.sh) -----------


@pytest.fixture(scope="module")
def sglang_fakes(local_backend):
    """Two fake SGLang servers on the real SmolLM2 folder: radix cache off (takes input_embeds) and on."""
    from contextlib import ExitStack

    from tests.conftest import serve_app_in_thread
    from tests.fakes.fake_sglang import FakeSGLangServer

    with ExitStack() as stack:
        servers = {}
        for radix in (False, True):
            server = FakeSGLangServer(model_path=str(local_backend.loaded.path), radix_cache=radix)
            server.url = stack.enter_context(serve_app_in_thread(server.app))
            servers[radix] = server
        yield servers


async def test_through_sglang_the_gist_goes_as_input_embeds_or_is_skipped_with_the_radix_cache_on(
    sglang_fakes, trained, tmp_path, monkeypatch
):
    from backend.sglang import SGLangBackend
    from tests.fakes import toy_model

    monkeypatch.setattr(toy_model, "HIDDEN", 576)  # the fake's toy model, sized like SmolLM2's embeddings
    store = GistStore(tmp_path)
    store.save(trained)
    for radix, fake in sglang_fakes.items():
        backend = SGLangBackend(fake.url)
        try:
            await backend.connect()
            pipeline = Pipeline(backend, stages=[GistStage(backend, store)])
            done = await pipeline.complete(
                Request(SamplingParams(temperature=0, max_tokens=2), messages=chat())
            )
        finally:
            await backend.close()
        [report] = done.report.stages
        [body] = [b for path, b in fake.requests if path == "/generate"][-1:]
        if radix:
            assert not report.applied and "--disable-radix-cache" in report.skipped_reason
            [ids] = body["input_ids"]  # sent unchanged, as token ids
            assert len(ids) > trained.record.prefix_tokens
        else:
            assert report.applied, report
            [sent] = torch.tensor(body["input_embeds"])  # a list batch of one prompt
            assert sent.shape == (report.tokens_out, 576)
            gist = trained.vectors.to(torch.bfloat16).float()
            assert torch.allclose(sent[:4], gist)  # the gist vectors, then the model's own embeddings


# --- the CLI ------------------------------------------------------------------------------------------


def test_the_cli_lists_removes_and_explains_errors_in_one_line(tmp_path, capsys, trained):
    import json

    from middleware.cli import main

    data = ["--data-dir", str(tmp_path)]
    short = tmp_path / "short.txt"
    short.write_text("Be brief.")
    assert main(["gist", "train", "--prefix-file", str(short), "--tokens", "4", *data]) == 2
    error = capsys.readouterr().err
    assert error.startswith("promptfold: error: the prefix has") and error.count("\n") == 1
    prefix = tmp_path / "prefix.txt"
    prefix.write_text(PREFIX)
    assert main(["gist", "train", "--prefix-file", str(prefix), "--tokens", "400", *data]) == 2
    assert "not smaller than the prefix" in capsys.readouterr().err
    foreign = GistStore(tmp_path / "gists").save(foreign_copy(trained)).id
    assert main(["gist", "eval", foreign, *data]) == 2
    assert "was trained for model SmolLM2-135M-Instruct (weights ffffffffffff)" in capsys.readouterr().err
    assert main(["gist", "list", "--json", *data]) == 0
    assert [g["id"] for g in json.loads(capsys.readouterr().out)] == [foreign]
    assert main(["gist", "rm", "g-000000000000-00000000-k4", *data]) == 2
    assert "no gist" in capsys.readouterr().err
    assert main(["gist", "rm", foreign, *data]) == 0
    assert main(["gist", "list", *data]) == 0
    assert "no gists in" in capsys.readouterr().out
