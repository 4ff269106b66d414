"""The classifier scorer: rows, the shipped files and their checks, both runtimes, and the seam."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from middleware.compress import CompressOptions, Compressor, ScoreRequest
from middleware.compress.classifier import ClassifierScorer, ClassifierUnavailable, Geometry, read_card
from middleware.compress.classifier.rows import RowEncoder, batches, scatter
from tests.classifier_doubles import tiny_classifier

TEXT = (
    "The quarterly report was prepared by the finance team of Northwind Traders in early spring. "
    "Revenue grew to $1,200,000 in the third quarter, up 36% from the previous quarter. The full dataset "
    "is at https://example.com/reports/q3?id=42 and order ABC-123 shipped on 2024-05-01. "
) * 3


@pytest.fixture(scope="module")
def classifier_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_classifier(tmp_path_factory.mktemp("classifier"))


@pytest.fixture(scope="module")
def scorer(classifier_folder: Path) -> ClassifierScorer:
    return ClassifierScorer(classifier_folder)


def encoder(geometry: Geometry) -> RowEncoder:
    from tokenizers import Tokenizer

    from backend.models import resolve_embedder

    tokenizer = Tokenizer.from_file(str(resolve_embedder().path / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return RowEncoder(tokenizer, geometry)


def test_rows_score_every_wordpiece_exactly_once_within_the_row_size() -> None:
    rows_of = encoder(Geometry(row_tokens=64, overlap=8, prefix_tokens=16))
    texts = rows_of.encode_texts([TEXT, "short"])
    rows = rows_of.rows(texts, ["Question: who shipped the order?\n\n", ""])
    for index, (ids, _) in enumerate(texts):
        covered = np.zeros(len(ids), dtype=int)
        for row in (r for r in rows if r.request == index):
            assert len(row.ids) <= 64
            covered[row.begin : row.end] += 1
            assert list(row.ids[row.at : row.at + row.end - row.begin]) == list(ids[row.begin : row.end])
        assert covered.tolist() == [1] * len(ids)


def test_rows_after_the_first_read_the_text_before_them() -> None:
    rows_of = encoder(Geometry(row_tokens=64, overlap=8, prefix_tokens=16))
    [(ids, _)] = rows_of.encode_texts([TEXT])
    rows = rows_of.rows([(ids, np.zeros((len(ids), 2), dtype=np.int64))], ["before"])
    assert len(rows) > 2
    second = rows[1]
    assert list(second.ids[second.at - 8 : second.at]) == list(ids[second.begin - 8 : second.begin])
    assert set(second.types[second.at - 8 :].tolist()) == {1}


def test_a_long_prefix_keeps_its_head_and_its_tail() -> None:
    rows_of = encoder(Geometry(row_tokens=96, overlap=8, prefix_tokens=16))
    question = "Question: which company prepared the quarterly report?"
    prefix = question + " " + "filler words " * 40 + "the text just before"
    [row] = rows_of.rows(rows_of.encode_texts(["and then it ended"]), [prefix])
    head = rows_of.encode_texts([question])[0][0][:8]
    tail = rows_of.encode_texts(["the text just before"])[0][0]
    assert list(row.ids[1:9]) == list(head)
    assert list(row.ids[row.at - 1 - len(tail) : row.at - 1]) == list(tail)


def test_scores_come_in_the_teachers_tokens_with_character_spans(scorer: ClassifierScorer) -> None:
    from backend.tokenizer import packaged_tokenizer

    [scores] = scorer.score_sync([ScoreRequest(TEXT, "Report:")])
    ids, spans = packaged_tokenizer().encode_with_offsets(TEXT)
    assert len(scores) == scorer.count_tokens(TEXT) == len(ids) > 100
    assert scores.token_ids.tolist() == ids.tolist() and scores.spans.tolist() == spans.tolist()
    assert scores.self_information.dtype == np.float32 and (scores.self_information >= 0).all()


def test_a_token_takes_the_score_of_the_wordpiece_of_its_first_visible_character() -> None:
    from middleware.compress.classifier.scorer import _covering

    text = "Hello  wonderful\nworld"
    pieces = np.asarray([[0, 5], [7, 11], [11, 16], [17, 22]])  # hello won ##derful world
    tokens = np.asarray([[0, 5], [5, 11], [11, 16], [16, 17], [17, 22]])  # Hello, "  won", derful, \n, world
    assert _covering(text, pieces, tokens).tolist() == [0, 1, 2, 2, 3]


def test_a_request_scores_the_same_alone_and_in_a_batch(scorer: ClassifierScorer) -> None:
    requests = [ScoreRequest(TEXT[:300], ""), ScoreRequest(TEXT, "Question: when?\n\n"), ScoreRequest("a b")]
    together = scorer.score_sync(requests)
    for request, batched in zip(requests, together, strict=True):
        [alone] = scorer.score_sync([request])
        np.testing.assert_allclose(alone.self_information, batched.self_information, atol=0.05)


def test_the_int8_file_scores_like_the_network_it_was_exported_from(classifier_folder: Path) -> None:
    import torch

    from middleware.compress.classifier.student import from_pretrained

    scorer = ClassifierScorer(classifier_folder)
    rows = scorer.rows.rows(scorer.rows.encode_texts([TEXT]), ["Report:"])
    [batch] = list(batches(rows, 16, 4096))
    model = from_pretrained(str(classifier_folder.parent / "student"))
    model.load_state_dict(torch.load(classifier_folder.parent / "float.pt"))
    with torch.no_grad():
        exact = model(*(torch.from_numpy(a) for a in (batch.ids, batch.mask, batch.types))).numpy()
    int8 = scorer.runtime.run(batch.ids, batch.mask, batch.types)
    assert np.corrcoef(exact[batch.mask == 1], int8[batch.mask == 1])[0, 1] > 0.95


def test_the_cuda_runtime_rebuilds_the_network_from_the_int8_file(classifier_folder: Path) -> None:
    from middleware.compress.classifier.runtime import TorchRuntime

    scorer = ClassifierScorer(classifier_folder)
    texts = scorer.rows.encode_texts([TEXT])
    [batch] = list(batches(scorer.rows.rows(texts, [""]), 16, 4096))
    rebuilt = TorchRuntime(classifier_folder / "scorer-int8.onnx", scorer.card, "cpu")
    onnx_values = [np.zeros(len(texts[0][0]), np.float32)]
    torch_values = [np.zeros(len(texts[0][0]), np.float32)]
    scatter(batch, scorer.runtime.run(batch.ids, batch.mask, batch.types), onnx_values)
    scatter(batch, rebuilt.run(batch.ids, batch.mask, batch.types), torch_values)
    assert np.corrcoef(onnx_values[0], torch_values[0])[0, 1] > 0.95


def test_a_missing_classifier_is_one_sentence_that_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(ClassifierUnavailable) as caught:
        read_card(tmp_path)
    message = str(caught.value)
    assert "not installed" in message and "promptfold scorer install" in message
    assert message.count(". ") == 0 and "\n" not in message


def test_a_changed_model_file_is_refused(classifier_folder: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(classifier_folder, copy)
    with (copy / "scorer-int8.onnx").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ClassifierUnavailable, match="does not match its card"):
        ClassifierScorer(copy)


def test_a_card_of_another_format_is_refused(classifier_folder: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(classifier_folder, copy)
    card = json.loads((copy / "card.json").read_text())
    (copy / "card.json").write_text(json.dumps({**card, "format": 99}))
    with pytest.raises(ClassifierUnavailable, match="card format 99"):
        read_card(copy)


def test_the_card_names_the_teacher_and_the_tokenizer(scorer: ClassifierScorer) -> None:
    assert scorer.teacher.startswith("SmolLM2-135M-Instruct")
    assert scorer.card.tokenizer_sha256 and scorer.card.student["config"]["num_hidden_layers"] == 2


def test_compression_with_the_classifier_keeps_numbers_urls_and_ids_whole(scorer: ClassifierScorer) -> None:
    result = asyncio.run(Compressor(scorer).compress_text(TEXT, CompressOptions(rate=0.3)))
    assert result.compressed_tokens < result.original_tokens
    for number in re.findall(r"\$?\d[\d,.-]*\d%?", result.text):
        assert number in TEXT
    for whole in ("https://example.com/reports/q3?id=42", "ABC-123"):
        assert whole in result.text or whole not in result.text.replace(" ", "")


def test_install_joins_the_pieces_of_a_split_export_and_checks_them(
    classifier_folder: Path, tmp_path: Path
) -> None:
    from middleware.compress.classifier.training.export import install

    archive = tmp_path / "classifier.tar"
    with tarfile.open(archive, "w") as tar:
        for path in classifier_folder.iterdir():
            tar.add(path, arcname=path.name)
    data = archive.read_bytes()
    pieces = tmp_path / "pieces"
    pieces.mkdir()
    half = len(data) // 2
    (pieces / "classifier.tar.partaa").write_bytes(data[:half])
    (pieces / "classifier.tar.partab").write_bytes(data[half:])
    card = install(pieces, tmp_path / "installed")
    assert card.model_sha256 == read_card(tmp_path / "installed").model_sha256
