"""Shared by the engine tests: a tiny random Llama in fp32 (exact, fast) and a sink that collects."""

from __future__ import annotations

import threading
from typing import Any

import torch

from backend.base import Generation, TokenLogprob
from backend.engine.model import LoadedModel


def tiny_llama(tokenizer: Any, path: Any) -> LoadedModel:
    """A 2-layer Llama with SmolLM2's vocabulary and random weights (seed 0); no EOS, so rows run to
    max_tokens unless a test gives stop ids."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=None,
        bos_token_id=None,
        pad_token_id=0,
    )
    model = LlamaForCausalLM(config).eval()
    model.requires_grad_(False)
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        path=path,
        device=torch.device("cpu"),
        dtype=torch.float32,
        num_layers=2,
        kv_heads=2,
        head_dim=16,
        hidden_size=64,
        max_positions=512,
        stop_token_ids=frozenset(),
        pad_token_id=0,
        lock=threading.Lock(),
    )


class Collect:
    """A Sink that keeps what the engine hands it; `wait()` returns the Generation or fails the test."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Generation | None = None
        self.error: BaseException | None = None
        self.deltas: list[str] = []
        self.delta_ids: list[int] = []
        self.delta_logprobs: list[TokenLogprob] = []
        self.answers = 0  # on_done + on_error calls: must end at exactly 1

    def on_delta(self, text: str, token_ids: list[int], logprobs: list[TokenLogprob] | None = None) -> None:
        self.deltas.append(text)
        self.delta_ids.extend(token_ids)
        self.delta_logprobs.extend(logprobs or [])

    def on_done(self, result: Generation) -> None:
        self.result = result
        self.answers += 1
        self.done.set()

    def on_error(self, error: BaseException) -> None:
        self.error = error
        self.answers += 1
        self.done.set()

    def wait(self, timeout_s: float = 60) -> Generation:
        assert self.done.wait(timeout_s)
        assert self.error is None, self.error
        assert self.result is not None
        return self.result
