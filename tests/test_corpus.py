"""Cleaning the seed, loading articles, and chunk invariants."""

from __future__ import annotations

import re

import pytest

from assistant.corpus import (
    approx_tokens,
    chunk_article,
    clean_plain_article,
    load_corpus,
    parse_article,
    read_article,
    split_sentences,
)
from assistant.errors import CorpusError

from .conftest import REPO

SEED = REPO / "tests" / "data" / "seed_article.txt"  # a copy of shared/seed/article.txt
EXPECTED_IDS = ["intro", "tip-6", "tip-5", "tip-4", "tip-3", "tip-2", "tip-1", "conclusion"]
CORPUS_FILE = REPO / "corpus" / "reconnecting-with-your-partner.md"


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def test_committed_corpus_has_eight_sections_with_stable_ids_and_no_image_credits():
    article = read_article(CORPUS_FILE)
    assert [s.section_id for s in article.sections] == EXPECTED_IDS
    assert "Image Source" not in article.text
    assert "Bing Image" not in article.text
    assert article.title and article.title != "Reconnecting With Your Partner"  # from front matter
    assert article.text.startswith("---\ntitle:")
    assert "source:" in article.text.split("---")[1]


def test_committed_corpus_keeps_every_seed_paragraph_verbatim():
    if not SEED.exists():
        pytest.fail(f"the seed article is missing at {SEED}")
    corpus = CORPUS_FILE.read_text(encoding="utf-8")
    for para in _paragraphs(SEED.read_text(encoding="utf-8")):
        if para.startswith("Image Source"):
            continue
        assert para in corpus, para[:60]


def test_cleaning_the_seed_drops_credits_and_finds_every_section(tmp_path):
    cleaned = clean_plain_article(SEED.read_text(encoding="utf-8"))
    assert "Image Source" not in cleaned
    article = parse_article(tmp_path / "seed.md", cleaned)
    assert [s.section_id for s in article.sections] == EXPECTED_IDS
    tip6 = next(s for s in article.sections if s.section_id == "tip-6")
    assert tip6.title == "6. Know when to hire a pro"
    assert "couples therapy" in cleaned[tip6.start : tip6.end]


def test_a_plain_text_article_in_the_corpus_is_cleaned_on_load(tmp_path):
    (tmp_path / "seed.txt").write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    [article] = load_corpus(tmp_path)
    assert [s.section_id for s in article.sections] == EXPECTED_IDS
    assert "Image Source" not in article.text


def test_an_article_without_numbered_tips_gets_ids_from_its_headings(tmp_path):
    (tmp_path / "b.md").write_text(
        "# Listening well\n\nSome opening words.\n\n## Put the phone down\n\nReally listen."
        "\n\n## Ask, don't assume!\n\nQuestions help.\n\n## Put the phone down\n\nAgain.\n",
        encoding="utf-8",
    )
    [article] = load_corpus(tmp_path)
    assert article.title == "Listening well"
    assert [s.section_id for s in article.sections] == [
        "intro", "put-the-phone-down", "ask-dont-assume", "put-the-phone-down-2"]


def test_every_article_in_the_folder_is_read(tmp_path):
    (tmp_path / "a.md").write_text("## One\n\nText one.\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("Plain words here.\n", encoding="utf-8")
    (tmp_path / "notes.json").write_text("{}", encoding="utf-8")
    assert [a.slug for a in load_corpus(tmp_path)] == ["a", "b"]


def test_non_utf8_file_is_an_error_naming_the_file(tmp_path):
    bad = tmp_path / "latin.md"
    bad.write_bytes("## Caf\xe9\n\nna\xefve".encode("latin-1"))
    with pytest.raises(CorpusError, match="latin.md.*not UTF-8"):
        load_corpus(tmp_path)


@pytest.mark.parametrize("content", [b"", b"   \n\n", b"---\ntitle: x\n---\n\n"])
def test_file_without_text_is_an_error_naming_the_file(tmp_path, content):
    (tmp_path / "empty.md").write_bytes(content)
    with pytest.raises(CorpusError, match="empty.md.*no text"):
        load_corpus(tmp_path)


def test_binary_file_is_refused(tmp_path):
    (tmp_path / "blob.txt").write_bytes(b"abc\x00\x01\x02")
    with pytest.raises(CorpusError, match="blob.txt"):
        load_corpus(tmp_path)


def test_search_keys_naming_an_unknown_section_are_an_error(tmp_path):
    (tmp_path / "a.md").write_text("## One\n\nText one.\n", encoding="utf-8")
    (tmp_path / "a.keys.toml").write_text('[sections.two]\nkeys = ["x"]\n', encoding="utf-8")
    with pytest.raises(CorpusError, match="two"):
        load_corpus(tmp_path)


@pytest.mark.parametrize("max_tokens", [24, 48, 160])
def test_chunks_never_span_sections_and_offsets_point_at_their_text(max_tokens):
    article = read_article(CORPUS_FILE)
    chunks = chunk_article(article, max_tokens=max_tokens, overlap=1)
    bounds = {s.section_id: (s.start, s.end) for s in article.sections}
    assert {c.section_id for c in chunks} == set(EXPECTED_IDS)
    for c in chunks:
        lo, hi = bounds[c.section_id]
        assert lo <= c.start < c.end <= hi, c.chunk_id
        assert article.text[c.start : c.end] == c.text
        assert "\n## " not in c.text and not c.text.startswith("#")
        # Within the model's 256-token window (a single over-long sentence is the exception).
        assert approx_tokens(c.text) <= max(max_tokens, 60) * 1.6
    assert [c.position for c in chunks] == list(range(len(chunks)))


def test_small_chunks_overlap_by_a_sentence_within_a_section():
    article = read_article(CORPUS_FILE)
    chunks = [c for c in chunk_article(article, max_tokens=60, overlap=1)
              if c.section_id == "tip-2"]
    assert len(chunks) >= 3
    multi = [(a, b) for a, b in zip(chunks, chunks[1:]) if len(split_sentences(a.text)) > 1]
    assert multi
    for a, b in multi:
        assert b.start < a.end, "neighbouring chunks share a sentence"
        assert b.start > a.start
