"""The proxy's routes, one module per surface, each with `build_router(auth) -> APIRouter`:

    openai    /v1/chat/completions, /v1/completions, /v1/models
    compress  /v1/compress (compression alone, no model call)
    corpora   /v1/corpora... (retrieval corpora)
    gists     /v1/gists... (training and managing gists)

`common.py` holds what they share: body parsing and the request options validated at the edge.
"""
