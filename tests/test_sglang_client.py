"""The SGLang client against `tests/fakes/fake_sglang.py`, a FAKE SGLang server (SGLang needs a GPU; the
real one is exercised on the GPU machine by tests/contract). The fake answers with a toy model: the last
word of the prompt in capitals, characters as tokens, a fixed formula for prompt logprobs."""

from __future__ import annotations

import numpy as np
import pytest
import pytest_asyncio

from backend import BackendError, BackendUnavailable, Prompt, SamplingParams, UnsupportedRequest
from backend.sglang import SGLangBackend
from tests.fakes import free_port, make_tiny_tokenizer, serve_in_thread
from tests.fakes import toy_model as toy
from tests.fakes.fake_sglang import FakeSGLangServer

GREEDY = SamplingParams(temperature=0, max_tokens=16)
PARAGRAPH = "In the quiet valley of Aldermere the river bends twice before it reaches the old mill. "


@pytest.fixture(scope="module")
def radix_server():
    server = FakeSGLangServer()
    with serve_in_thread(server.app) as url:
        server.url = url
        yield server


@pytest.fixture(scope="module")
def embeds_server():
    server = FakeSGLangServer(radix_cache=False, server_info_route=True)
    with serve_in_thread(server.app) as url:
        server.url = url
        yield server


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    return make_tiny_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture
def fake(radix_server):
    radix_server.reset()
    return radix_server


@pytest_asyncio.fixture
async def sglang(fake):
    backend = SGLangBackend(fake.url)
    yield backend
    await backend.close()


def generate_bodies(server) -> list[dict]:
    return [body for path, body in server.requests if path == "/generate"]


# --- batching and prompt kinds ----------------------------------------------------------------------


async def test_a_batch_of_texts_is_one_list_request_answered_in_prompt_order(sglang, fake):
    texts = ["say hello", "name a colour: blue", "the last word wins"]
    results = await sglang.generate([Prompt.from_text(t) for t in texts], GREEDY)
    assert [r.text for r in results] == [" HELLO", " BLUE", " WINS"]
    assert [r.finish_reason for r in results] == ["stop"] * 3
    assert [r.usage.prompt_tokens for r in results] == [len(toy.tokenize(t)) for t in texts]
    assert results[0].token_ids == [ord(c) for c in " HELLO"] + [toy.EOS]
    [body] = generate_bodies(fake)
    assert body["text"] == texts


async def test_mixed_kinds_go_one_request_per_kind_and_come_back_in_input_order(embeds_server):
    embeds_server.reset()
    torch = pytest.importorskip("torch")
    prompts = [
        Prompt.from_text("first apple"),
        Prompt.from_token_ids(toy.tokenize("second pear")),
        Prompt.from_embeds(np.asarray(toy.embed(toy.tokenize("third plum")), dtype=np.float16)),
        Prompt.from_text("fourth fig"),
        Prompt.from_embeds(torch.tensor(toy.embed(toy.tokenize("fifth kiwi")), dtype=torch.bfloat16)),
    ]
    backend = SGLangBackend(embeds_server.url)
    try:
        results = await backend.generate(prompts, GREEDY)
    finally:
        await backend.close()
    assert [r.text for r in results] == [" APPLE", " PEAR", " PLUM", " FIG", " KIWI"]
    bodies = generate_bodies(embeds_server)
    assert sorted(next(k for k in ("text", "input_ids", "input_embeds") if k in b) for b in bodies) == [
        "input_embeds",
        "input_ids",
        "text",
    ]
    [embeds_body] = [b for b in bodies if "input_embeds" in b]
    assert len(embeds_body["input_embeds"]) == 2 and len(embeds_body["input_embeds"][0][0]) == toy.HIDDEN


async def test_sampling_maps_to_sglang_fields_and_extra_fields_pass_through(sglang, fake):
    sampling = SamplingParams(
        temperature=0.7, top_p=0.9, max_tokens=5, stop=["!"], seed=7, extra={"top_k": 20}
    )
    await sglang.generate([Prompt.from_text("hi there")], sampling)
    [body] = generate_bodies(fake)
    assert body["sampling_params"] == {
        "temperature": 0.7,
        "top_p": 0.9,
        "max_new_tokens": 5,
        "stop": ["!"],
        "sampling_seed": 7,
        "top_k": 20,
    }


async def test_max_tokens_zero_only_prefills(sglang):
    [result] = await sglang.generate([Prompt.from_text("count me")], SamplingParams(max_tokens=0))
    assert result.text == "" and result.token_ids == []
    assert result.finish_reason == "length"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (len(toy.tokenize("count me")), 0)


async def test_a_stop_string_ends_the_answer_and_max_tokens_cuts_it(sglang):
    [cut] = await sglang.generate([Prompt.from_text("say hello")], SamplingParams(max_tokens=3, stop=["LL"]))
    assert (cut.text, cut.finish_reason) == (" HE", "length")
    [stopped] = await sglang.generate(
        [Prompt.from_text("say hello")], SamplingParams(max_tokens=9, stop=["LL"])
    )
    assert (stopped.text, stopped.finish_reason) == (" HE", "stop")


async def test_empty_token_ids_are_refused_before_anything_is_sent(sglang, fake):
    with pytest.raises(UnsupportedRequest, match="empty"):
        await sglang.generate([Prompt.from_token_ids([])], GREEDY)
    assert fake.requests == []


# --- prompt logprobs --------------------------------------------------------------------------------


async def test_prompt_logprobs_line_up_with_the_prompt_token_ids(sglang):
    ids = toy.tokenize("score these words")
    [result] = await sglang.generate(
        [Prompt.from_token_ids(ids)], SamplingParams(max_tokens=0), prompt_logprobs=True
    )
    assert result.prompt_token_ids == ids
    assert result.prompt_logprobs == [None] + [toy.prompt_logprob(ids, i) for i in range(1, len(ids))]


async def test_logprob_start_blanks_the_leading_tokens_and_asks_sglang_from_one_earlier(sglang, fake):
    ids = toy.tokenize("one two three four")
    [result] = await sglang.generate(
        [Prompt.from_token_ids(ids)], SamplingParams(max_tokens=0), prompt_logprobs=True, logprob_start=3
    )
    assert result.prompt_logprobs == [None] * 3 + [toy.prompt_logprob(ids, i) for i in range(3, len(ids))]
    # SGLang leaves out the token at logprob_start_len itself, so position 3 needs a start of 2.
    [body] = generate_bodies(fake)
    assert (body["return_logprob"], body["logprob_start_len"]) == (True, 2)


async def test_text_prompt_logprobs_take_the_token_ids_from_the_server(sglang):
    text = "what the server tokenizes"
    ids = toy.tokenize(text)
    [whole] = await sglang.generate(
        [Prompt.from_text(text)], SamplingParams(max_tokens=0), prompt_logprobs=True
    )
    assert whole.prompt_token_ids == ids
    assert len(whole.prompt_logprobs) == whole.usage.prompt_tokens == len(ids)
    [later] = await sglang.generate(
        [Prompt.from_text(text)], SamplingParams(max_tokens=0), prompt_logprobs=True, logprob_start=5
    )
    # The fake, like an SGLang without return_prompt_token_ids, sends no ids before the start: unknown.
    assert later.prompt_token_ids is None
    assert later.prompt_logprobs[5:] == [toy.prompt_logprob(ids, i) for i in range(5, len(ids))]
    assert later.prompt_logprobs[:5] == [None] * 5


async def test_prompt_logprobs_of_embeddings_are_refused(sglang):
    with pytest.raises(UnsupportedRequest, match="token ids"):
        await sglang.generate([Prompt.from_embeds([[1.0, 0, 0, 0]])], GREEDY, prompt_logprobs=True)


# --- the prefix cache -------------------------------------------------------------------------------


async def test_cached_tokens_come_from_the_servers_memory_and_flush_cache_forgets(sglang):
    prefix = toy.tokenize(PARAGRAPH)
    assert await sglang.warm_prefix(Prompt.from_token_ids(prefix)) == len(prefix)
    [first] = await sglang.generate(
        [Prompt.from_token_ids(prefix + toy.tokenize(" Q: what bends?")[1:])], GREEDY
    )
    assert first.usage.cached_tokens == len(prefix)
    await sglang.flush_cache()
    [after] = await sglang.generate([Prompt.from_token_ids(prefix + toy.tokenize(" Q: mill?")[1:])], GREEDY)
    assert after.usage.cached_tokens == 0


async def test_a_batch_sharing_a_long_prefix_has_it_computed_once(sglang, fake):
    prefix = toy.tokenize(PARAGRAPH)
    prompts = [
        Prompt.from_token_ids(prefix + [ord(c) for c in f" Question {i}: which river?"]) for i in range(4)
    ]
    results = await sglang.generate(prompts, GREEDY)
    assert all(r.usage.cached_tokens >= len(prefix) for r in results), [
        r.usage.cached_tokens for r in results
    ]
    warm, batch = generate_bodies(fake)
    assert warm == {
        "input_ids": prefix + [ord(c) for c in " Question "],
        "sampling_params": {"max_new_tokens": 0},
    }
    assert len(batch["input_ids"]) == 4


async def test_a_batch_of_texts_sharing_a_long_prefix_is_warmed_up_to_a_word_boundary(sglang, fake):
    prompts = [
        Prompt.from_text(PARAGRAPH * 2 + tail) for tail in ("Where is the mill?", "Where are the bees?")
    ]
    results = await sglang.generate(prompts, GREEDY)
    warm, _ = generate_bodies(fake)
    assert warm["text"] == PARAGRAPH * 2 + "Where"
    assert all(r.usage.cached_tokens >= len(toy.tokenize(PARAGRAPH * 2)) for r in results)


async def test_short_or_unrelated_prompts_are_sent_without_a_warm_up(sglang, fake):
    await sglang.generate([Prompt.from_text("a b c"), Prompt.from_text("a b d")], GREEDY)
    assert len(generate_bodies(fake)) == 1


# --- streaming --------------------------------------------------------------------------------------


@pytest.mark.parametrize("incremental", [False, True], ids=["cumulative", "incremental"])
async def test_streaming_turns_sglangs_chunks_into_deltas(sglang, fake, incremental):
    fake.incremental_stream = incremental
    prompt = Prompt.from_text("stream this sentence")
    [whole] = await sglang.generate([prompt], GREEDY)
    chunks = [chunk async for chunk in sglang.stream(prompt, GREEDY)]
    assert [c.text for c in chunks[:-1] if c.text] == list(" SENTENCE")  # one character per chunk, no repeats
    assert "".join(c.text for c in chunks) == whole.text
    assert [t for c in chunks for t in c.token_ids] == whole.token_ids
    assert all(c.finish_reason is None for c in chunks[:-1])
    last = chunks[-1]
    assert (last.finish_reason, last.usage.completion_tokens) == ("stop", whole.usage.completion_tokens)
    assert last.usage.cached_tokens > 0  # the same prompt ran just before


@pytest.mark.parametrize("incremental", [False, True])
async def test_streamed_logprobs_come_once_per_token(sglang, fake, incremental):
    fake.incremental_stream = incremental
    sampling = SamplingParams(temperature=0, max_tokens=8, logprobs=True)
    chunks = [c async for c in sglang.stream(Prompt.from_text("stream this sentence"), sampling)]
    entries = [e for c in chunks for e in c.logprobs or []]
    assert [e.token_id for e in entries] == [t for c in chunks for t in c.token_ids]


async def test_a_stream_of_zero_tokens_finishes_with_length(sglang):
    chunks = [c async for c in sglang.stream(Prompt.from_text("nothing"), SamplingParams(max_tokens=0))]
    assert [(c.text, c.finish_reason) for c in chunks] == [("", "length")]


# --- chat messages ----------------------------------------------------------------------------------


async def test_messages_are_rendered_here_and_sent_as_token_ids_with_a_tokenizer(fake, tokenizer_dir):
    backend = SGLangBackend(fake.url, tokenizer=tokenizer_dir)
    messages = [{"role": "user", "content": "What is 2+2?"}]
    try:
        [result] = await backend.generate([Prompt.from_messages(messages)], GREEDY)
        rendered = backend.apply_chat_template(messages)
        assert backend.capabilities.chat_template
    finally:
        await backend.close()
    assert rendered == "<s><|user|> What is 2+2? <|assistant|> "
    [body] = generate_bodies(fake)
    assert body["input_ids"] == [backend.tokenize(rendered)] == [[1, 2, 5, 6, 7, 3]]
    assert result.usage.prompt_tokens == 6


async def test_the_servers_own_model_folder_serves_as_tokenizer_when_it_is_on_this_machine(
    sglang, fake, tokenizer_dir
):
    fake.model_path = tokenizer_dir
    await sglang.connect()
    assert sglang.capabilities.chat_template
    assert sglang.tokenize("hello world") == [8, 9]
    await sglang.generate([Prompt.from_messages([{"role": "user", "content": "hello"}])], GREEDY)
    assert [path for path, _ in fake.requests] == ["/generate"]


async def test_without_a_tokenizer_messages_take_sglangs_chat_route(sglang, fake):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "say hello"}]
    [first] = await sglang.generate([Prompt.from_messages(messages)], GREEDY)
    [second] = await sglang.generate([Prompt.from_messages(messages)], GREEDY)
    assert first.text == " HELLO" and "/v1/chat/completions" in first.notes[0]
    assert second.usage.cached_tokens > 0  # from usage.prompt_tokens_details, as --enable-cache-report gives
    assert [path for path, _ in fake.requests] == ["/v1/chat/completions"] * 2
    assert not sglang.capabilities.chat_template
    with pytest.raises(UnsupportedRequest, match="tokenizer="):
        sglang.apply_chat_template(messages)
    with pytest.raises(UnsupportedRequest, match="token ids"):
        await sglang.generate([Prompt.from_messages(messages)], GREEDY, prompt_logprobs=True)
    chunks = [c async for c in sglang.stream(Prompt.from_messages(messages), GREEDY)]
    assert "".join(c.text for c in chunks) == " HELLO" and chunks[-1].finish_reason == "stop"


# --- server info, capabilities, health --------------------------------------------------------------


async def test_server_info_falls_back_to_get_server_info_and_narrows_capabilities(sglang, fake):
    info = await sglang.connect()
    assert ("GET", "/server_info") in fake.paths and ("GET", "/get_server_info") in fake.paths
    assert (info.model_path, info.context_len, info.radix_cache) == ("/models/fake-sglang-model", 512, True)
    assert sglang.model_id == "fake-sglang-model"
    caps = sglang.capabilities
    assert (caps.max_context_tokens, caps.prefix_cache, caps.input_embeds) == (512, True, False)
    await sglang.connect()
    assert fake.paths.count(("GET", "/model_info")) == 1  # read once


async def test_a_server_without_radix_cache_takes_embeddings_but_warms_nothing(embeds_server):
    embeds_server.reset()
    backend = SGLangBackend(embeds_server.url)
    try:
        await backend.connect()
        assert ("GET", "/get_server_info") not in embeds_server.paths  # /server_info answered
        assert backend.capabilities.input_embeds and not backend.capabilities.prefix_cache
        with pytest.raises(UnsupportedRequest, match="prefix cache"):
            await backend.warm_prefix(Prompt.from_text("anything"))
    finally:
        await backend.close()


async def test_health_says_ready_with_the_model_name_and_reports_an_unready_server(sglang, fake):
    health = await sglang.health()
    assert (health.ok, health.backend, health.model) == (True, "sglang", "fake-sglang-model")
    fake.healthy = False
    health = await sglang.health()
    assert not health.ok and "503" in health.detail


# --- errors -----------------------------------------------------------------------------------------


async def test_a_server_that_is_down_is_unavailable_and_named():
    url = f"http://127.0.0.1:{free_port()}"
    backend = SGLangBackend(url)
    try:
        with pytest.raises(BackendUnavailable, match=r"127\.0\.0\.1") as caught:
            await backend.generate([Prompt.from_text("hi")], GREEDY)
        assert caught.value.status == 503
        health = await backend.health()
        assert not health.ok and url in health.detail
    finally:
        await backend.close()


async def test_a_slow_server_times_out_as_unavailable(fake):
    fake.delay_s = 1.0
    backend = SGLangBackend(fake.url, timeout_s=0.2)
    try:
        with pytest.raises(BackendUnavailable, match=r"within 0\.2 s"):
            await backend.generate([Prompt.from_text("hi")], GREEDY)
    finally:
        await backend.close()


async def test_a_server_error_is_a_502_carrying_sglangs_words(sglang, fake):
    fake.fail_next = (500, "CUDA error: an illegal memory access was encountered")
    with pytest.raises(BackendError, match="illegal memory access") as caught:
        await sglang.generate([Prompt.from_text("hi")], GREEDY)
    assert caught.value.status == 502 and not isinstance(caught.value, BackendUnavailable)
    fake.fail_next = (500, "scheduler died")
    with pytest.raises(BackendError, match="scheduler died"):
        [c async for c in sglang.stream(Prompt.from_text("hi"), GREEDY)]


async def test_a_prompt_longer_than_the_context_is_the_users_fault(sglang):
    with pytest.raises(UnsupportedRequest, match="longer than the model's context length"):
        await sglang.generate([Prompt.from_token_ids([42] * 600)], GREEDY)


async def test_embeddings_on_a_radix_cache_server_say_how_to_launch_it(sglang, fake):
    with pytest.raises(UnsupportedRequest, match="Please add `--disable-radix-cache`"):  # SGLang's words
        await sglang.generate([Prompt.from_embeds(toy.embed([1, 104, 105]))], GREEDY)
    fake.fail_next = (500, "AssertionError")  # an unclear failure gets the hint added
    with pytest.raises(
        BackendError, match=r"AssertionError \(SGLang accepts input_embeds only when launched"
    ):
        await sglang.generate([Prompt.from_embeds(toy.embed([1, 104, 105]))], GREEDY)


async def test_an_aborted_generation_is_an_error(sglang, fake):
    fake.abort_next = {"message": "out of memory", "status_code": 500}
    with pytest.raises(BackendError, match=r"abort.*out of memory"):
        await sglang.generate([Prompt.from_text("hi")], GREEDY)
    fake.abort_next = {"message": "prompt has too many images", "status_code": 400}
    with pytest.raises(UnsupportedRequest, match="too many images"):
        await sglang.generate([Prompt.from_text("hi")], GREEDY)


async def test_the_api_key_is_sent_and_a_wrong_one_is_reported():
    server = FakeSGLangServer(api_key="s3cret")
    with serve_in_thread(server.app) as url:
        good, bad = SGLangBackend(url, api_key="s3cret"), SGLangBackend(url, api_key="wrong")
        try:
            [result] = await good.generate([Prompt.from_text("say hello")], GREEDY)
            assert result.text == " HELLO" and server.auth_headers[-1] == "Bearer s3cret"
            with pytest.raises(BackendError, match=r"refused the API key.*Unauthorized") as caught:
                await bad.generate([Prompt.from_text("say hello")], GREEDY)
            assert caught.value.status == 502
        finally:
            await good.close()
            await bad.close()
