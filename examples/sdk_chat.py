"""promptfold as a library: chat, stream and compress with the embedded SmolLM2 (no server, no GPU).

python examples/sdk_chat.py
python examples/sdk_chat.py sglang://127.0.0.1:30000      # the same code against an SGLang server
"""

import sys

from middleware import Middleware

CONTEXT = (
    "The library on Elm Street opened in 1987 with 12,500 books and two reading rooms. Over the years "
    "the town council paid for a new wing, a children's corner and a small cafe, and by 2020 the "
    "collection had grown to 48,300 volumes, most of them donated by local families. Volunteers run a "
    "reading club every Tuesday evening, and the building is closed on Sundays and public holidays."
)

with Middleware(sys.argv[1] if len(sys.argv) > 1 else "local") as mw:
    reply = mw.chat("What is the capital of France?", temperature=0, max_tokens=16)
    print("answer:", reply.text.strip())
    print("tokens:", reply.usage.prompt_tokens, "in,", reply.usage.completion_tokens, "out")

    print("stream:", "".join(mw.stream("Name three colours.", temperature=0, max_tokens=16)).strip())

    result = mw.compress(CONTEXT, rate=0.5)  # compression alone: no model call
    print(
        f"compressed {result.original_tokens} -> {result.compressed_tokens} tokens (ratio {result.ratio:.2f})"
    )
    print("kept:", result.text)

    question = CONTEXT + "\n\nWhen did the library open?"
    # question-aware: the words that answer the last user question are the ones kept
    reply = mw.chat(question, compress={"rate": 0.5, "mode": "question_aware"}, temperature=0, max_tokens=24)
    [stage] = [s for s in reply.report.stages if s.stage == "compress"]
    print(f"compressed chat: {stage.tokens_in} -> {stage.tokens_out} tokens; answer: {reply.text.strip()}")
