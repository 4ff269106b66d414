"""Keep your OpenAI client code; let promptfold run its pipeline in front of the server it points at.

promptfold serve &                       # or any OpenAI-compatible server (SGLang, vLLM, ...)
python examples/wrap_openai.py           # OPENAI_BASE_URL defaults to http://127.0.0.1:8000/v1
"""

import os

import openai

from middleware import Middleware

base_url = os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
client = openai.OpenAI(base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY", "unused"))

with Middleware() as mw:
    wrapped = mw.wrap(client)  # same API as `client`; chat.completions.create runs the pipeline
    context = "Mount Kilimanjaro, in Tanzania, is the highest mountain in Africa at 5,895 metres. " * 3
    reply = wrapped.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": context + "\n\nHow high is Kilimanjaro?"}],
        temperature=0,
        max_tokens=24,
        extra_body={"promptfold": {"compress": {"rate": 0.5}}},
    )
    print("answer:", reply.choices[0].message.content.strip())
    print("prompt tokens sent:", reply.usage.prompt_tokens)
    for stage in reply.model_extra["promptfold"]["stages"]:
        print(
            f"stage {stage['stage']}: applied={stage['applied']} {stage['tokens_in']} -> {stage['tokens_out']}"
        )

    stream = wrapped.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "Say hello."}], max_tokens=12, stream=True
    )
    print(
        "stream:", "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices).strip()
    )
