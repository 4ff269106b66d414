"""`promptfold corpus add|search|list|drop`: manage the corpora that chat requests retrieve from."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "manage retrieval corpora (add, search, list, drop)"
DESCRIPTION = """\
Corpora live under DATA_DIR/corpora/NAME (DATA_DIR: --data-dir, else PROMPTFOLD_DATA_DIR, else
~/.local/share/promptfold). A running proxy sees changes at once: writers take a per-corpus lock,
readers never wait. Chat requests use a corpus with {"promptfold": {"retrieval": {"corpus": NAME}}}.
"""
EPILOG = """\
examples:
  promptfold corpus add docs handbook.txt notes/          # creates 'docs' if needed; ids = paths
  promptfold corpus add docs --jsonl corpus.jsonl          # lines {"id", "text", "title"?, "source"?}
  promptfold corpus search docs "how many days of leave?" -k 3
  promptfold corpus list                                   # corpora; `list docs` lists its documents
  promptfold corpus drop docs --document handbook.txt      # one document; without it the whole corpus
"""


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "corpus",
        help=HELP,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=lambda args: parser.print_help() or 2)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    add = actions.add_parser("add", help="add (or replace) documents: text files, folders or --jsonl files")
    add.add_argument("name")
    add.add_argument("paths", nargs="+", metavar="PATH")
    add.add_argument("--jsonl", action="store_true", help="PATHs are JSON-lines files of documents")
    add.add_argument("--id", help="document id for a single file (default: its path)")
    add.add_argument("--title", help="title indexed with every chunk of a single file")
    add.add_argument("--chunk-tokens", type=int, help="new corpus: most tokens per chunk (default 200)")
    add.add_argument("--overlap-tokens", type=int, help="new corpus: overlap between chunks (default 32)")
    add.add_argument(
        "--embedding-model", help="new corpus: local sentence-transformers folder (default MiniLM)"
    )
    add.set_defaults(run=run_add)

    search = actions.add_parser("search", help="the passages of a corpus most relevant to a query")
    search.add_argument("name")
    search.add_argument("query")
    search.add_argument("-k", type=int, default=5, help="passages to show (default 5)")
    search.add_argument("--mmr", type=float, help="MMR lambda in [0, 1] for diverse results")
    search.add_argument("--json", action="store_true", help="one JSON object per passage")
    search.set_defaults(run=run_search)

    listing = actions.add_parser("list", help="the corpora, or the documents of one corpus")
    listing.add_argument("name", nargs="?")
    listing.set_defaults(run=run_list)

    drop = actions.add_parser("drop", help="delete a corpus, or some of its documents")
    drop.add_argument("name")
    drop.add_argument(
        "--document", action="append", metavar="ID", help="delete only this document (repeatable)"
    )
    drop.set_defaults(run=run_drop)

    for sub in (add, search, listing, drop):
        sub.add_argument(
            "--data-dir",
            help="where corpora live (default: PROMPTFOLD_DATA_DIR or ~/.local/share/promptfold)",
        )


def _corpora(args: argparse.Namespace) -> Any:
    from pathlib import Path

    from ..config import Settings
    from ..retrieval.catalog import corpora_for

    return corpora_for(Path(args.data_dir) if args.data_dir else Settings().data_dir)


def _guarded(work: Any) -> Any:
    """Run `work()`, turning a user-fixable error into a one-line CliError."""
    from backend import UserError

    from . import CliError

    try:
        return work()
    except UserError as error:
        raise CliError(str(error)) from error


def run_add(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..retrieval.chunking import ChunkingConfig
    from ..retrieval.errors import UnknownCorpus
    from ..retrieval.ingest import documents_from_file, documents_from_jsonl, text_files
    from ..tokens import default_token_counter
    from . import CliError

    def work() -> int:
        paths = [Path(p) for p in args.paths]
        if args.jsonl:
            documents = [d for p in text_files(paths) for d in documents_from_jsonl(p)]
        else:
            files = text_files(paths)
            if args.id and len(files) != 1:
                raise CliError("--id names one document: give exactly one file")
            documents = [documents_from_file(f, document_id=args.id, title=args.title) for f in files]
        corpora = _corpora(args)
        try:
            corpus = corpora.get(args.name)
        except UnknownCorpus:
            defaults = ChunkingConfig()
            chunking = ChunkingConfig(
                args.chunk_tokens or defaults.max_tokens,
                defaults.overlap_tokens if args.overlap_tokens is None else args.overlap_tokens,
            )
            corpus = corpora.create(args.name, embedding_model=args.embedding_model, chunking=chunking)
            print(f"created corpus '{args.name}' in {corpus.directory.path}")
        result = corpus.add(documents, default_token_counter())
        print(
            f"corpus '{args.name}': {len(result.added)} added, {len(result.replaced)} replaced; "
            f"{result.chunks} chunks, {result.tokens} tokens (generation {result.generation})"
        )
        return 0

    return int(_guarded(work))


def run_search(args: argparse.Namespace) -> int:
    import json

    from ..retrieval.corpus import SearchConfig

    def work() -> int:
        corpus = _corpora(args).get(args.name)
        passages = corpus.search(args.query, args.k, SearchConfig(mmr_lambda=args.mmr))
        for rank, passage in enumerate(passages, start=1):
            if args.json:
                print(json.dumps({"rank": rank, **passage.as_dict()}, ensure_ascii=False))
                continue
            text = " ".join(passage.text.split())
            print(
                f"[{rank}] {passage.score:.4f}  {passage.source}  ({passage.document_id} {passage.start}:{passage.end})"
            )
            print(f"    {text[:300]}{'...' if len(text) > 300 else ''}")
        if not passages:
            print(f"corpus '{args.name}' is empty")
        return 0

    return int(_guarded(work))


def run_list(args: argparse.Namespace) -> int:
    def work() -> int:
        corpora = _corpora(args)
        if args.name:
            for document in corpora.get(args.name).documents():
                print(
                    f"{document['id']}\t{document['source']}\t{document['chunks']} chunks\t{document['tokens']} tokens"
                )
            return 0
        names = corpora.names()
        if not names:
            print(f"no corpora in {corpora.root}")
        for name in names:
            info = corpora.get(name).info()
            print(
                f"{name}\t{info['documents']} documents\t{info['chunks']} chunks\t{info['index']}\t{info['embedding_model']}"
            )
        return 0

    return int(_guarded(work))


def run_drop(args: argparse.Namespace) -> int:
    def work() -> int:
        corpora = _corpora(args)
        if args.document:
            removed = corpora.get(args.name).delete(args.document)
            print(f"corpus '{args.name}': removed {', '.join(removed)}")
        else:
            corpora.drop(args.name)
            print(f"dropped corpus '{args.name}'")
        return 0

    return int(_guarded(work))
