"""Output organization: skeleton-of-thought with a router, pipelined parallel expansion and
shared-prefix reuse.

    router/      does skeleton-then-expand help this question? (rules + a classifier on MiniLM)
    skeleton.py  the outline prompt and its line-by-line reader
    prompts.py   skeleton and branch prompts, rendered so that the branches share their first tokens
    plan.py      the plan as data, for the report
    run.py       executing a plan: skeleton call, warm-up, branches, retries, plain fallback
    ordered.py   the answer in outline order, whole or streamed
    executors.py the "sot", "pipelined" and "auto" executors the pipeline plugs in

Ask for it per request: `{"promptfold": {"organize": "auto" | "sot" | "pipelined" | "off"}}`.
"""
