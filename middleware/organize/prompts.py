"""The text of the skeleton prompt and of the expansion (branch) prompts, rendered with the backend's own
chat template so that every branch starts with the same tokens.

A branch prompt is the shared prefix (system prompt, the question, the instruction) followed by its
point-specific tail (the point, the end of the user turn, the assistant header). The template is
rendered once with a marker where the tail goes and split there; the split is checked with the
backend's tokenizer, and the shared prefix reported is the common run of token ids the branches really
have, not what the text suggests.

Branches see their own point, not the whole outline: with SmolLM2-135M a prompt that lists every point
made most branches copy the list back instead of explaining their point (tried on our own questions).
"""

from __future__ import annotations

from dataclasses import dataclass

from backend import Backend, ChatMessage, Prompt

from ..token_ids import common_prefix_length
from .skeleton import ANSWER_START, skeleton_messages

EXPAND_INSTRUCTION = "Question: {question}\n\nExplain this part of the answer in two sentences:"
_TAIL = "\x00point\x00"  # never in a question: the tokenizer would not survive a NUL either


@dataclass(frozen=True)
class BranchPrompts:
    """Prompts for the branches of one plan, all starting with `shared`."""

    shared: Prompt  # the shared prefix alone (what gets warmed)
    shared_tokens: int  # token ids every branch starts with (0 when the backend cannot count)
    head: str  # the shared prefix as text
    foot: str  # what follows a point: the end of the user turn and the assistant header
    as_token_ids: bool

    def text_for(self, point: str) -> str:
        """The whole prompt text of the branch that expands `point` (the answer it writes follows it)."""
        return self.head + " " + point + self.foot

    def prompt(self, backend: Backend, text: str) -> Prompt:
        """`text` (from `text_for`, maybe with a partial answer after it) in the form the backend gets."""
        return Prompt.from_token_ids(backend.tokenize(text)) if self.as_token_ids else Prompt.from_text(text)


def skeleton_prompt(backend: Backend, question: str, system: str | None, max_points: int) -> Prompt:
    """The few-shot outline request with the answer prefilled with ANSWER_START."""
    text = backend.apply_chat_template(skeleton_messages(question, system, max_points)) + ANSWER_START
    return _as_prompt(backend, text)


def branch_prompts(backend: Backend, question: str, system: str | None) -> BranchPrompts:
    """The shared prefix of the expansion prompts of `question` and how a point's tail is added."""
    messages: list[ChatMessage] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": EXPAND_INSTRUCTION.format(question=question) + _TAIL})
    rendered = backend.apply_chat_template(messages)
    head, foot = rendered.split(_TAIL)
    ids = _token_ids(backend)
    if not ids:
        return BranchPrompts(Prompt.from_text(head), 0, head, foot, as_token_ids=False)
    shared = backend.tokenize(head)
    # The point starts with a space, which the tokenizer keeps apart from the ":" before it; check anyway,
    # with a point that could glue to the head if the tokenizer merged across it.
    probe = backend.tokenize(head + " x" + foot)
    common = common_prefix_length(shared, probe)
    return BranchPrompts(Prompt.from_token_ids(shared[:common]), common, head, foot, as_token_ids=True)


def shared_prefix_length(prompts: list[Prompt]) -> int:
    """Token ids all `prompts` start with (0 unless they are token-id prompts)."""
    ids = [p.token_ids for p in prompts]
    if not ids or any(i is None for i in ids):
        return 0
    first = ids[0]
    assert first is not None
    return min(common_prefix_length(first, other) for other in ids if other is not None)


def _as_prompt(backend: Backend, text: str) -> Prompt:
    return Prompt.from_token_ids(backend.tokenize(text)) if _token_ids(backend) else Prompt.from_text(text)


def _token_ids(backend: Backend) -> bool:
    # Token ids make the shared prefix exact (the text form leaves tokenizing to the server).
    return backend.capabilities.token_ids
