"""Named fakes of the model servers promptfold talks to, for tests on CPU-only machines.

SGLang needs a GPU, so `fake_sglang.FakeSGLangServer` stands in for it in CI: a small FastAPI app with
the HTTP shapes of SGLang 0.5.x that `backend/sglang.py` relies on (the real server is exercised on the
GPU machine by tests/contract). `fake_openai.FakeOpenAIServer` does the same
for an OpenAI-compatible server. Both answer with `toy_model`, a deterministic stand-in for a model.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Run an ASGI app with uvicorn in a daemon thread on a free port; yields its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound before the server starts: no race for the port
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def free_port() -> int:
    """A port nothing listens on (for 'server is down' tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_tiny_tokenizer(folder: Any) -> str:
    """Save a tiny word-level HF tokenizer with a chat template into `folder`; returns its path.

    It stands for a model folder's tokenizer: "<s><|user|> hello world <|assistant|> " and so on.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = [
        "<unk>",
        "<s>",
        "<|user|>",
        "<|assistant|>",
        "<|system|>",
        "What",
        "is",
        "2+2?",
        "hello",
        "world",
    ]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", bos_token="<s>")
    tokenizer.chat_template = (
        "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}<|assistant|> {% endif %}"
    )
    tokenizer.save_pretrained(str(folder))
    return str(folder)
