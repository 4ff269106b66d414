"""Time the embedded engine's decode step (one forward for all rows + choosing their tokens).

    PYTHONPATH=. python bench/decode_step.py [--rounds 5] [--rows 8] [--tokens 48] [--features] [--tiny]

Runs `rounds` batches of `rows` prompts (half greedy, half temperature 0.8 / top-p 0.95, seeded) on the
packaged SmolLM2 and prints the median and the best milliseconds per decode step. `--tiny` swaps the model
for a 2-layer random Llama with SmolLM2's vocabulary: the forward then costs almost nothing, so the
figure is the step's own work (choosing tokens over 49k logits, bookkeeping), which is all that differs
between two versions of the engine; on a busy shared CPU it is also far less noisy. `--features` also sets penalties,
top-k, min-p, logit_bias and logprobs on every row (only on code that has those fields). It uses only
the engine's own API, so the same script measures two versions of the code (run it from each checkout).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from typing import Any

import numpy as np

PROMPTS = [
    "The history of the river valley begins",
    "Write a short poem about the sea:",
    "List three uses of copper:",
    "Explain photosynthesis to a child:",
    "The best way to learn a language is",
    "Describe a quiet morning in a village:",
    "What makes a good friend? Answer:",
    "Once upon a time, in a city of glass,",
]


class _Sink:
    def __init__(self) -> None:
        self.done = threading.Event()

    def on_delta(self, *args: Any) -> None:
        pass

    def on_done(self, result: Any) -> None:
        self.done.set()

    def on_error(self, error: BaseException) -> None:
        print("error:", error)
        self.done.set()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--features", action="store_true")
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()

    import backend
    from backend.base import SamplingParams
    from backend.engine.model import load_causal_lm
    from backend.engine.requests import EngineRequest
    from backend.engine.scheduler import Engine
    from backend.models import resolve_causal_lm

    print("code from", backend.__file__)
    model = load_causal_lm(str(resolve_causal_lm(None).path))
    if args.tiny:
        model = _tiny(model)
    engine = Engine(model, max_rows=64)
    step_times: list[float] = []
    inner = engine._decode_step

    def timed() -> None:
        started = time.perf_counter()
        inner()
        step_times.append(time.perf_counter() - started)

    engine._decode_step = timed  # type: ignore[method-assign]
    engine.start()
    extra: dict[str, Any] = {}
    if args.features:
        extra = dict(
            frequency_penalty=0.5,
            presence_penalty=0.3,
            repetition_penalty=1.1,
            top_k=40,
            min_p=0.05,
            logit_bias={13: -5.0},
            logprobs=True,
            top_logprobs=5,
        )
    ids = [np.array(model.tokenizer(p)["input_ids"]) for p in PROMPTS]
    medians, best = [], []
    for round_ in range(args.rounds + 1):  # the first round warms up and is not counted
        step_times.clear()
        sinks = []
        group = []
        for i in range(args.rows):
            greedy = i % 2 == 0
            sampling = SamplingParams(
                temperature=0.0 if greedy else 0.8, top_p=0.95, max_tokens=args.tokens, seed=i, **extra
            )
            sink = _Sink()
            sinks.append(sink)
            group.append(EngineRequest(sampling, sink, token_ids=ids[i % len(ids)]))
        engine.submit(group)
        for sink in sinks:
            sink.done.wait(300)
        if round_:
            medians.append(statistics.median(step_times) * 1000)
            best.append(min(step_times) * 1000)
    engine.stop()
    print(
        f"decode step: median {statistics.median(medians):.2f} ms over {args.rounds} rounds "
        f"(per round: {', '.join(f'{m:.2f}' for m in medians)}), best {min(best):.2f} ms; "
        f"rows={args.rows} features={args.features} tiny={args.tiny}"
    )


def _tiny(real: Any) -> Any:
    import dataclasses

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=real.model.config.vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
    )
    model = LlamaForCausalLM(config).eval()
    model.requires_grad_(False)
    return dataclasses.replace(
        real, model=model, dtype=torch.float32, num_layers=2, kv_heads=2, head_dim=16, hidden_size=64
    )


if __name__ == "__main__":
    main()
