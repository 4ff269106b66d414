"""The classifier on the Scorer seam: the request option, CLI flags, the server default, and the fallback
to the SmolLM2 scorer when the classifier cannot be used."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from middleware.compress import CompressOptions
from middleware.compress.service import CompressionService
from middleware.compress.stage import stage_report
from middleware.config import Settings
from middleware.options import request_options
from tests.classifier_doubles import tiny_classifier

TEXT = (
    "The museum opened in 1897 and holds about 12,000 paintings, most of them donated by local families. "
    "Its west wing was rebuilt after a fire in 1954, and the collection of maps moved there in 1961. "
) * 4


@pytest.fixture(scope="module")
def classifier_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_classifier(tmp_path_factory.mktemp("classifier"))


def test_the_scorer_option_takes_classifier_in_a_request_and_in_server_settings() -> None:
    options = request_options({"compress": {"rate": 0.4, "scorer": "classifier"}})
    assert options.compress is not None and options.compress.scorer == "classifier"
    assert Settings(compress_scorer="classifier").compress_scorer == "classifier"
    with pytest.raises(ValueError):
        Settings(compress_scorer="nonsense")


def test_the_cli_flags_name_the_classifier() -> None:
    from middleware.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["compress", "f.txt", "--scorer", "classifier"]).scorer == "classifier"
    assert parser.parse_args(["serve", "--compress-scorer", "classifier"]).compress_scorer == "classifier"


def test_a_request_without_a_scorer_gets_the_service_default() -> None:
    assert CompressionService(default_scorer="classifier").scorer_kind(None) == "classifier"
    assert CompressionService(default_scorer="classifier").scorer_kind("local") == "local"
    assert CompressionService(default_scorer="auto", device="cuda").scorer_kind(None) == "local"


def test_the_service_compresses_with_the_classifier_and_counts_smollm2_tokens(
    classifier_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from middleware.tokens import default_token_counter

    monkeypatch.setenv("PROMPTFOLD_CLASSIFIER", str(classifier_folder))
    service = CompressionService()
    options = CompressOptions(rate=0.5, scorer="classifier")
    result = asyncio.run(service.compress(options, text=TEXT))
    assert result.scorer == "classifier" and not result.notes
    assert result.original_tokens == default_token_counter()(TEXT)
    assert 0.4 <= result.ratio <= 0.6
    assert stage_report(result, options).details["scorer"] == "classifier"
    for number in ("1897", "12,000", "1954", "1961"):
        assert number in result.text or number not in result.text.replace(",", "")


def test_without_the_classifier_the_local_scorer_stands_in_and_the_result_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_backend
) -> None:
    monkeypatch.setenv("PROMPTFOLD_CLASSIFIER", str(tmp_path))  # an empty folder: nothing installed
    service = CompressionService()
    result = asyncio.run(service.compress(CompressOptions(rate=0.5, scorer="classifier"), text=TEXT))
    assert result.compressed_tokens < result.original_tokens
    [note] = [n for n in result.notes if "classifier" in n]
    assert "local scorer (SmolLM2) stood in" in note and "not installed" in note
    again = asyncio.run(service.compress(CompressOptions(rate=0.5, scorer="classifier"), text=TEXT))
    assert again.notes.count(note) == 1  # a cached result does not collect the note twice
