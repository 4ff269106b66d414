"""Gist compression: k trained soft tokens that stand in for a long recurring prefix.

For a prefix P (a system prompt, a few-shot block) we learn k embedding vectors G by distillation with
the serving model frozen, so that the model's next-token distributions after [G + x] match those after
[P + x] for continuations x (queries and the model's own answers). Requests that begin with P are then
served with G in its place, as input embeddings: P's tokens are neither sent nor prefilled.

    import asyncio
    from backend import open_backend
    from middleware.compress.gist import GistStore, PrefixSpec
    from middleware.compress.gist.train import GistJob, make_gist
    from middleware.compress.gist.distill import TrainConfig

    backend = open_backend("local")
    gist = asyncio.run(make_gist(backend, GistJob(PrefixSpec(open("system.txt").read()), TrainConfig(tokens=16))))
    GistStore("gists").save(gist)

Modules: prefix (where P sits in a chat, its exact tokens), model (weights fingerprint, embeddings),
data (queries and answers), distill (the training loop), evaluate (KL, agreement, greedy answers),
train (the whole job), store (safetensors + JSON), stage (serving), options (the request option);
HTTP: middleware/server/routes/gists.py.
torch is imported only by distill, evaluate and train.
"""

from .errors import GistError, GistNotFound, GistUnusable, PrefixTooShort, TooManyGistTokens, WrongModel
from .prefix import FramedPrefix, PrefixSpec
from .store import Gist, GistEval, GistRecord, GistStore

__all__ = [
    "FramedPrefix",
    "Gist",
    "GistError",
    "GistEval",
    "GistNotFound",
    "GistRecord",
    "GistStore",
    "GistUnusable",
    "PrefixSpec",
    "PrefixTooShort",
    "TooManyGistTokens",
    "WrongModel",
]
