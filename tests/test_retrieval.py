"""Retrieval: quality thresholds on the eval sets, result shape, diversity, errors, LangChain."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda

from assistant.errors import QueryError
from assistant.retrieval import DEFAULT_MODE, stem, tokenize
from assistant.testing.metrics import compare, evaluate, read_jsonl

from .conftest import REPO


def load_set(name: str) -> list[dict]:
    return read_jsonl(REPO / "evals" / "data" / f"{name}.jsonl")


@pytest.fixture(scope="module")
def scores(retriever):
    rows = load_set("retrieval")
    assert len(rows) >= 40
    return {m: evaluate(retriever, rows, m) for m in ("dense", "lexical", "hybrid")}


def test_the_default_mode_meets_the_quality_targets(scores):
    default = scores[DEFAULT_MODE]
    assert default["hit@3"] >= 0.95, default["misses"]
    assert default["mrr"] >= 0.85, default["misses"]


def test_bm25_alone_is_clearly_behind_dense_and_fusing_it_in_costs_nothing(scores):
    """Lexical search alone loses by more than noise; hybrid never ranks a question lower."""
    d, h, lex = scores["dense"], scores["hybrid"], scores["lexical"]
    assert compare(d["rr"], lex["rr"]).low > 0  # dense beats BM25, beyond the interval
    vs_dense = compare(h["rr"], d["rr"])
    assert vs_dense.losses == 0, [q for q, a, b in zip(h["ids"], h["rr"], d["rr"]) if a < b]


def test_heldout_questions_generalise(retriever):
    held = evaluate(retriever, load_set("retrieval_heldout"), DEFAULT_MODE)
    assert held["hit@3"] >= 0.9 and held["mrr"] >= 0.8, held["misses"]


def test_words_are_stemmed_by_snowball_and_stopwords_dropped():
    assert tokenize("We were talking about our feelings") == ["talk", "feel"]
    assert stem("happiness") == stem("happy") != "happiness"


def test_the_retriever_is_a_langchain_retriever_that_composes_in_lcel(retriever):
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("should we see a couples therapist")
    assert docs and all(isinstance(d, Document) for d in docs)
    assert docs[0].metadata["section_id"] == "tip-6"
    assert len(docs) == retriever.top_k
    chain = retriever | RunnableLambda(lambda ds: [d.metadata["section_id"] for d in ds])
    assert chain.invoke("should we see a couples therapist") == [
        d.metadata["section_id"] for d in docs
    ]


def test_results_carry_section_text_and_score(retriever):
    passages = retriever.retrieve("how do we make time for each other", 3)
    assert len(passages) == 3
    for p in passages:
        d = p.to_dict()
        assert {"section_id", "section_title", "text", "score", "start", "end"} <= d.keys()
        article = next(a for a in retriever.articles if a.slug == p.chunk.article)
        assert article.text[p.chunk.start : p.chunk.end] == p.text
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)


def test_top_k_is_diversified_across_sections(retriever):
    for q in ("date night ideas", "should we see a couples therapist", "i miss him"):
        sections = [p.section_id for p in retriever.retrieve(q, 5)]
        assert len(sections) == len(set(sections)), sections


def test_a_shared_embedding_gives_the_same_ranking(retriever):
    q = "we only talk about the kids and bills"
    vec = retriever.embed_query(q)
    assert [p.chunk.chunk_id for p in retriever.retrieve(q, 4, embedding=vec)] == [
        p.chunk.chunk_id for p in retriever.retrieve(q, 4)
    ]


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_query_is_a_clear_error(retriever, query):
    with pytest.raises(QueryError, match="empty"):
        retriever.retrieve(query)


def test_words_outside_the_vocabulary_still_return_dense_results(retriever):
    assert retriever.retrieve("zxqv blorp", 2, mode="hybrid")
    assert retriever.retrieve("zxqv blorp", 2, mode="lexical") == []
