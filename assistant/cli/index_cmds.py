"""`assistant ingest`, `assistant search`, `assistant doctor`."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from typing import Any

from ..config import get_settings
from ..errors import QueryError, ReconnectError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ingest",
        help="build or refresh the search index from corpus/",
        description="Read every article in the corpus folder, chunk it by section, embed the "
        "chunks and store them in Chroma. Does nothing when the index is already fresh.",
    )
    p.add_argument("--force", action="store_true", help="rebuild even if the index is fresh")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser(
        "search",
        help="show the passages that best match a question",
        description="Search the corpus: dense (embeddings) by default; BM25 alone or both "
        "fused by reciprocal rank on request.",
    )
    p.add_argument("query", help="what to search for, in your own words")
    p.add_argument("--k", type=int, default=None, metavar="N", help="how many passages (1-20)")
    p.add_argument("--json", action="store_true", help="print a JSON list, best first")
    p.add_argument(
        "--mode", choices=("dense", "hybrid", "lexical"), default=None,
        help="retrieval mode (default: dense)",
    )
    p.set_defaults(func=cmd_search)

    p = sub.add_parser(
        "doctor",
        help="show settings in effect, model checksum and index state",
        description="Check the installation: settings (secrets masked), the embedding model's "
        "checksum, Chroma mode, and whether the index is fresh for the current corpus.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_doctor)


def _quiet_model_logs() -> None:
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:  # noqa: BLE001 - only cosmetic
        pass


def cmd_ingest(args: argparse.Namespace) -> int:
    from ..index import VectorIndex, load_embedder

    settings = get_settings()
    _quiet_model_logs()
    t0 = time.perf_counter()
    embedder = load_embedder(settings)
    loaded = time.perf_counter() - t0
    index = VectorIndex(settings, embedder)
    state = index.ensure(progress=not args.quiet, force=args.force)
    for notice in state.notices:
        print(f"note: {notice}", file=sys.stderr)
    where = settings.chroma_path if state.mode == "embedded" else (
        f"{settings.chroma_host}:{settings.chroma_port}")
    if state.built:
        print(
            f"Indexed {state.chunks} chunks from {len(index.articles)} article(s) into "
            f"{state.collection} ({state.mode}, {where}) in {state.build_seconds:.2f} s "
            f"(model load {loaded:.1f} s)."
        )
    else:
        print(f"Index is fresh: {state.chunks} chunks in {state.collection} "
              f"({state.mode}, {where}).")
    return 0


def _read_query(raw: str, max_chars: int) -> tuple[str, str | None]:
    from ..text import clean_user_text

    return clean_user_text(raw, max_chars)


def cmd_search(args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.k is not None and not 1 <= args.k <= 20:
        raise QueryError("--k must be between 1 and 20.")
    query, notice = _read_query(args.query, settings.max_query_chars)
    if notice:
        print(f"note: {notice}", file=sys.stderr)
    from ..retrieval import build_retriever

    _quiet_model_logs()
    retriever = build_retriever(settings)
    for n in retriever.state.notices:
        print(f"note: {n}", file=sys.stderr)
    passages = retriever.retrieve(query, args.k, mode=args.mode)
    if args.json:
        json.dump([p.to_dict() for p in passages], sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 0
    if not passages:
        print("No passages matched.")
    for i, p in enumerate(passages, 1):
        print(f"{i}. [{p.section_id}] {p.section_title}  (score {p.score:.4f})")
        print(textwrap.indent(textwrap.fill(p.text, 88), "   "))
        print()
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from ..index import LOCAL_MODEL_NAME, VectorIndex, load_embedder, local_model_dir, sha256_file

    settings = get_settings()
    report: dict[str, Any] = {"settings": settings.masked(), "chroma_mode": settings.chroma_mode}
    ok = True
    if settings.embedding_provider == "local":
        try:
            weights = local_model_dir() / "model.safetensors"
            digest = sha256_file(weights)
            from ..index import MODEL_SHA256

            report["model"] = {
                "name": LOCAL_MODEL_NAME,
                "weights": str(weights),
                "sha256": digest,
                "checksum_ok": digest == MODEL_SHA256,
            }
            ok &= digest == MODEL_SHA256
        except (ReconnectError, OSError) as exc:
            report["model"] = {"error": str(exc)}
            ok = False
    else:
        report["model"] = {"name": f"openai:{settings.openai_embedding_model}"}
    try:
        _quiet_model_logs()
        index = VectorIndex(settings, load_embedder(settings))
        report["index"] = index.status()
        report["corpus"] = [
            {"file": str(a.path), "title": a.title, "sections": [s.section_id for s in a.sections]}
            for a in index.articles
        ]
    except ReconnectError as exc:
        report["index"] = {"error": str(exc)}
        ok = False
    report["llm"] = {
        "enabled": settings.llm_enabled,
        "base_url": settings.openai_base_url
        or ("(OpenAI default)" if settings.llm_enabled else "-"),
        "model": settings.llm_model,
    }
    report["ok"] = ok
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0 if ok else 1
    print("Reconnect doctor\n")
    print("Settings in effect (secrets hidden):")
    for k, v in settings.masked().items():
        print(f"  {k:26} {v}")
    print(f"\nChroma mode: {settings.chroma_mode}")
    for section in ("model", "index", "llm"):
        print(f"\n{section.title()}:")
        for k, v in report[section].items():
            print(f"  {k:18} {v}")
    if "corpus" in report:
        print("\nCorpus:")
        for a in report["corpus"]:
            print(f"  {a['file']}: {a['title']} — {', '.join(a['sections'])}")
    print("\nAll good." if ok else "\nProblems found (see above).")
    return 0 if ok else 1


__all__ = ["cmd_doctor", "cmd_ingest", "cmd_search", "register"]
