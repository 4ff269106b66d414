"""One bad request never hurts another: a poisoned row fails alone, a failed forward fails only its
rows, every submitted request hears back exactly once, and stop() is bounded.

The poisons bypass validation on purpose (EngineRequest straight into the engine), to reach the engine's
own isolation; through LocalBackend they are refused up front with a 400."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from backend import BackendUnavailable, InvalidRequest, Prompt, SamplingParams
from backend.engine.grammar import GrammarError
from backend.engine.model import LoadedModel
from backend.engine.requests import EngineRequest
from backend.engine.scheduler import Engine

from .engine_doubles import Collect, tiny_llama

rng = np.random.default_rng(3)
PROMPTS = [rng.integers(100, 40000, 6 + i % 5).tolist() for i in range(16)]


@pytest.fixture(scope="module")
def tiny(local_backend) -> LoadedModel:
    return tiny_llama(local_backend.loaded.tokenizer, local_backend.loaded.path)


class BrokenGrammar:
    """A matcher that fails on its third token, as a buggy grammar library might."""

    def __init__(self) -> None:
        self.seen = 0
        self.done = False

    def bitmask(self) -> np.ndarray:
        return np.full(49184 // 32, -1, dtype=np.int32)  # everything allowed

    def accept(self, token: int) -> None:
        self.seen += 1
        if self.seen == 3:
            raise GrammarError("the matcher broke")


POISONS = {
    "tiny temperature": SamplingParams(temperature=1e-40, max_tokens=8),
    "NaN logit bias": SamplingParams(temperature=0.8, max_tokens=8, logit_bias={7: float("nan")}),
    "every token banned": SamplingParams(temperature=0, max_tokens=8, logit_bias={}, min_tokens=0),
    "broken grammar": SamplingParams(temperature=0.8, max_tokens=8),
}


@pytest.mark.parametrize("poison", list(POISONS))
def test_a_poisoned_request_among_16_fails_alone(tiny: LoadedModel, poison: str) -> None:
    engine = Engine(tiny, max_rows=32)
    engine.start()
    sinks = [Collect() for _ in PROMPTS]
    requests = [
        EngineRequest(
            SamplingParams(temperature=0.8 if i % 2 else 0, seed=i, max_tokens=8), sink, token_ids=np.array(p)
        )
        for i, (p, sink) in enumerate(zip(PROMPTS, sinks, strict=True))
    ]
    bad = requests[5]
    bad.sampling = POISONS[poison]
    if poison == "broken grammar":
        bad.grammar = BrokenGrammar()  # type: ignore[assignment]
    if poison == "every token banned":
        bad.sampling.logit_bias = {t: float("-inf") for t in range(tiny.vocab_size)}
    engine.submit(requests[:8])
    engine.submit(requests[8:])  # a second group joins the same batch
    for sink in sinks:
        assert sink.done.wait(60)
    engine.stop()
    assert sinks[5].error is not None and sinks[5].result is None
    for i, sink in enumerate(sinks):
        assert sink.answers == 1
        if i != 5:
            assert sink.error is None and sink.result is not None
            assert sink.result.usage.completion_tokens == 8
    assert engine.alive is False


def test_an_out_of_range_seed_in_the_engine_still_samples(tiny: LoadedModel) -> None:
    engine = Engine(tiny)
    engine.start()
    sink = Collect()
    engine.submit(
        [EngineRequest(SamplingParams(seed=2**64 + 5, max_tokens=4), sink, token_ids=np.array(PROMPTS[0]))]
    )
    assert len(sink.wait().token_ids) == 4
    engine.stop()


def test_a_failed_forward_fails_its_rows_and_the_engine_goes_on(tiny: LoadedModel, monkeypatch) -> None:
    engine = Engine(tiny)
    engine.start()
    running = [Collect() for _ in range(3)]
    engine.submit(
        [
            EngineRequest(SamplingParams(temperature=0, max_tokens=200), s, token_ids=np.array(PROMPTS[i]))
            for i, s in enumerate(running)
        ]
    )
    while engine.steps < 2:
        time.sleep(0.005)
    real_forward = tiny.forward
    calls = {"n": 0}

    def failing_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("out of memory, say")
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(tiny, "forward", failing_once)
    for sink in running:
        assert sink.done.wait(30)
        assert isinstance(sink.error, RuntimeError) and sink.answers == 1
    later = Collect()
    engine.submit(
        [EngineRequest(SamplingParams(temperature=0, max_tokens=4), later, token_ids=np.array(PROMPTS[4]))]
    )
    assert len(later.wait().token_ids) == 4
    engine.stop()


def test_stop_answers_everything_in_flight_and_queued_within_seconds(tiny: LoadedModel, monkeypatch) -> None:
    engine = Engine(tiny, max_rows=4)
    engine.start()
    sinks = [Collect() for _ in range(10)]  # 4 run, 6 wait for room
    engine.submit(
        [
            EngineRequest(SamplingParams(max_tokens=400), s, token_ids=np.array(PROMPTS[i]))
            for i, s in enumerate(sinks)
        ]
    )
    while engine.steps < 2:
        time.sleep(0.005)
    real_forward = tiny.forward
    stuck = threading.Event()

    def slow_forward(*args, **kwargs):  # a forward that hangs far longer than stop() may wait
        stuck.set()
        time.sleep(8)
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(tiny, "forward", slow_forward)
    assert stuck.wait(10)
    started = time.perf_counter()
    engine.stop(timeout_s=1.0)
    assert time.perf_counter() - started < 3
    for sink in sinks:
        assert sink.done.is_set() and sink.answers == 1
        assert isinstance(sink.error, BackendUnavailable)
    late = Collect()
    engine.submit([EngineRequest(SamplingParams(max_tokens=4), late, token_ids=np.array(PROMPTS[0]))])
    assert isinstance(late.error, BackendUnavailable)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"seed": 18446744073709551616}, "seed"),
        ({"temperature": 1e-40}, "temperature"),
        ({"logit_bias": {10**6: 1}}, "logit_bias"),
    ],
)
async def test_the_local_backend_refuses_poisons_with_a_400(local_backend, fields: dict, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await local_backend.generate([Prompt.from_text("hello")], SamplingParams(max_tokens=4, **fields))
    assert caught.value.param == param and caught.value.status == 400


def test_a_caller_whose_event_loop_closed_does_not_stop_the_engine(local_backend) -> None:
    import asyncio as aio

    from backend import Prompt
    from backend.base import SamplingParams as Sampling

    async def abandon() -> None:
        stream = local_backend.stream(Prompt.from_text("Count to one hundred:"), Sampling(max_tokens=64))
        await anext(stream)  # decoding has started; then the loop goes away with the request in flight

    loop = aio.new_event_loop()
    loop.run_until_complete(abandon())
    loop.close()

    async def served() -> str:
        [answer] = await local_backend.generate([Prompt.from_text("Hello")], Sampling(max_tokens=4))
        return answer.text

    assert local_backend.engine.alive
    assert aio.run(served())
    assert local_backend.engine.alive
