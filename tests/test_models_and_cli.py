"""Packaged models resolve without a hub; bad paths and bad settings are one clear sentence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from backend.models import ModelNotFound, resolve_causal_lm, resolve_embedder, smollm2_folder


def test_the_packaged_smollm2_is_converted_once_into_the_cache() -> None:
    folder = smollm2_folder()
    assert (folder / "model.safetensors").is_file()
    assert (folder / "chat_template.jinja").is_file() or "chat_template" in (
        folder / "tokenizer_config.json"
    ).read_text()
    assert "quantization_config" not in (folder / "config.json").read_text()  # a plain bf16 model
    assert resolve_causal_lm("smollm2").path == folder


def test_the_packaged_minilm_is_found() -> None:
    ref = resolve_embedder()
    assert ref.model_id == "all-MiniLM-L6-v2"
    assert (ref.path / "config.json").is_file()


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda tmp: tmp / "missing", "does not exist"),
        (lambda tmp: (tmp / "file.bin").write_text("x") and tmp / "file.bin", "is not a folder"),
        (lambda tmp: tmp, "has no config.json"),
    ],
)
def test_a_bad_model_path_is_one_sentence(tmp_path: Path, make, words: str) -> None:
    with pytest.raises(ModelNotFound, match=words):
        resolve_causal_lm(make(tmp_path))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "middleware.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_help_teaches_the_commands() -> None:
    result = _cli("--help")
    assert result.returncode == 0
    assert "serve" in result.stdout and "examples:" in result.stdout
    serve_help = _cli("serve", "--help").stdout
    assert "sglang://HOST:PORT" in serve_help and "--api-key" in serve_help


def test_serve_with_a_broken_model_folder_says_why_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    (tmp_path / "model.safetensors").write_text("not weights")
    result = _cli("serve", "--model", str(tmp_path), "--port", "1")
    assert result.returncode == 2
    assert "could not be loaded" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_serve_with_an_unknown_backend_says_which_forms_exist() -> None:
    result = _cli("serve", "--backend", "ftp://nowhere")
    assert result.returncode == 2
    assert "sglang://HOST:PORT" in result.stderr and "Traceback" not in result.stderr


def test_sentence_embeddings_are_unit_length_and_meaningful() -> None:
    from middleware.embeddings import shared_embedder

    vectors = shared_embedder().embed(
        ["the cat sat on the mat", "a cat was sitting on a rug", "stock markets fell sharply"]
    )
    assert vectors.shape == (3, 384)
    assert abs(float((vectors[0] ** 2).sum()) - 1) < 1e-4
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3
