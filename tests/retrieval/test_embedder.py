"""The retrieval embedder: MiniLM by default, unit vectors, the same vector alone or in a batch, cached."""

from __future__ import annotations

import numpy as np
import pytest

from backend.models import ModelNotFound
from middleware.embeddings import Embedder, shared_embedder


def test_vectors_are_unit_length_and_do_not_depend_on_the_batch() -> None:
    embedder = shared_embedder()
    texts = ["The cat sat on the mat.", "Stock markets fell sharply.", "A kitten rests on a rug."]
    batch = embedder.embed(texts)
    alone = np.stack([Embedder().embed([t])[0] for t in texts[:1]])
    assert batch.shape == (3, 384) and batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    assert np.allclose(alone[0], batch[0], atol=1e-4)
    assert batch[0] @ batch[2] > batch[0] @ batch[1]  # the paraphrase is nearer than the unrelated text


def test_a_repeated_text_is_served_from_the_cache() -> None:
    embedder = Embedder(cache_size=2)
    embedder.embed(["one", "two"])
    embedder.embed(["two", "one"])
    assert embedder.encoded == 2
    embedder.embed(["three"])  # evicts the least recently used ("two")
    embedder.embed(["one"])
    assert embedder.encoded == 3


def test_a_model_folder_that_does_not_exist_is_named_in_the_error(tmp_path) -> None:
    with pytest.raises(ModelNotFound, match="does not exist"):
        Embedder(str(tmp_path / "no-model"))


def test_queries_go_through_the_int8_onnx_encoder_and_land_next_to_the_float32_vector() -> None:
    fast, exact = Embedder(), Embedder(query_precision="float32")
    queries = ["who got the first nobel prize in physics", "when is the next deadpool movie released"]
    vectors = np.stack([fast.embed_query(q) for q in queries])
    reference = exact.embed(queries)
    assert fast.query_backend == "onnxruntime-int8"
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert all(vectors[i] @ reference[i] > 0.93 for i in range(2))
    assert vectors[0] @ reference[0] > vectors[0] @ reference[1]


def test_without_the_onnx_encoder_queries_fall_back_to_pytorch_int8(monkeypatch) -> None:
    from middleware.embeddings import onnx_query

    def unavailable(*args, **kwargs):
        raise onnx_query.QueryEncoderUnavailable("onnxruntime is not installed")

    monkeypatch.setattr(onnx_query, "OnnxQueryEncoder", unavailable)
    embedder = Embedder()
    vector = embedder.embed_query("who got the first nobel prize in physics")
    assert embedder.query_backend == "torch-int8" and vector.shape == (384,)


def test_a_float16_model_folder_still_gets_a_working_int8_onnx_query_encoder(tmp_path, monkeypatch) -> None:
    # The GPU machine carries MiniLM saved in float16; its export once gave an int8 graph onnxruntime refused.
    from sentence_transformers import SentenceTransformer

    monkeypatch.setenv("PROMPTFOLD_CACHE_DIR", str(tmp_path / "cache"))
    half = tmp_path / "minilm-fp16"
    SentenceTransformer(str(Embedder().ref.path), device="cpu").half().save(str(half))
    fast, exact = Embedder(str(half)), Embedder(query_precision="float32")
    query = "who got the first nobel prize in physics"
    vector = fast.embed_query(query)
    assert fast.query_backend == "onnxruntime-int8"
    assert vector @ exact.embed([query])[0] > 0.93
