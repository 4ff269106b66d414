"""Names and ids that reach the disk or a URL path: corpus names, document ids and gist ids follow strict
rules (documented in the README), a bad one is a 400 or 404 that quotes it briefly, and no error reveals
where the data lives."""

from __future__ import annotations

import httpx
import pytest

from middleware.compress.gist.store import GistStore
from middleware.retrieval.catalog import Corpora, valid_name
from middleware.retrieval.corpus import document_id_problem
from middleware.retrieval.errors import InvalidInput

BAD_CORPUS_NAMES = ["pwn4\n", "a\n", "x" * 65, ".hidden", "a.", "a/b", "..", "a b", "é", "a\x00", ""]
GOOD_CORPUS_NAMES = ["docs", "a", "kb-2024_v1.2", "A" * 64]
BAD_DOCUMENT_IDS = [".", "..", "a/..", "../etc/passwd", "a/./b", "a//b", "a/", "a\\..", " a", "a\n", "\x7f"]
GOOD_DOCUMENT_IDS = ["handbook.txt", "notes/leave.txt", "/tmp/kb/a.txt", "C# notes (v2).md", "..a", "a.."]


@pytest.mark.parametrize("name", BAD_CORPUS_NAMES)
def test_a_corpus_name_must_match_the_whole_rule(name: str, tmp_path) -> None:
    assert not valid_name(name)
    with pytest.raises(InvalidInput, match="Invalid corpus name"):
        Corpora(tmp_path).create(name)
    assert list(tmp_path.iterdir()) == []  # nothing was made on disk, a trailing newline included


@pytest.mark.parametrize("name", GOOD_CORPUS_NAMES)
def test_good_corpus_names_pass(name: str) -> None:
    assert valid_name(name)


@pytest.mark.parametrize("document_id", BAD_DOCUMENT_IDS)
def test_a_document_id_survives_url_normalisation_or_is_refused(document_id: str) -> None:
    assert document_id_problem(document_id) is not None


@pytest.mark.parametrize("document_id", GOOD_DOCUMENT_IDS)
def test_file_paths_and_ordinary_ids_are_document_ids(document_id: str) -> None:
    assert document_id_problem(document_id) is None


def test_the_proxy_refuses_a_corpus_name_with_a_trailing_newline(client: httpx.Client) -> None:
    response = client.post("/v1/corpora", json={"name": "pwn4\n"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "name"
    assert client.get("/v1/corpora").json()["data"] == []


@pytest.mark.parametrize("document_id", [".", "..", "a/../b"])
def test_the_proxy_refuses_dot_segment_document_ids(client: httpx.Client, document_id: str) -> None:
    client.post("/v1/corpora", json={"name": "ids"})
    response = client.post(
        "/v1/corpora/ids/documents", json={"documents": [{"id": document_id, "text": "Some text."}]}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "documents[0].id"


def test_a_long_gist_id_is_a_404_not_a_500(client: httpx.Client) -> None:
    response = client.get("/v1/gists/g-" + "1" * 5000)
    assert response.status_code == 404
    assert len(response.json()["error"]["message"]) < 200  # the id is quoted briefly


@pytest.mark.parametrize("gist_id", ["g-000000000000-00000000-k1\n", "g-000000000000-00000000-k" + "9" * 40])
def test_gist_ids_match_their_whole_rule(gist_id: str, tmp_path) -> None:
    with pytest.raises(Exception, match="gist ids look like"):
        GistStore(tmp_path).record(gist_id)


def test_a_missing_gist_does_not_reveal_the_data_path(client: httpx.Client, proxy: str) -> None:
    response = client.get("/v1/gists/g-000000000000-00000000-k1")
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    assert "/" not in message, message
