"""Load and clean articles, and split them into section-aware chunks."""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .errors import CorpusError
from .text import SENTENCE_END as _SENTENCE_END

ARTICLE_SUFFIXES = (".md", ".markdown", ".txt")
CHUNKER_VERSION = "1"

_IMAGE_CREDIT = re.compile(r"^\s*Image Source:.*$", re.IGNORECASE)
_TIP_HEADING = re.compile(r"^(\d{1,2})\.\s+(\S.{0,120})$")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*(?:\{#([a-z0-9][a-z0-9-]*)\})?\s*$")
_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)
_TOKENISH = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class Section:
    """One headed section of an article; offsets index the article file's text."""

    article: str
    section_id: str
    title: str
    start: int
    end: int
    position: int


@dataclass(frozen=True)
class Article:
    """A corpus file: its slug, title, full text and sections."""

    slug: str
    title: str
    path: Path
    text: str
    sections: tuple[Section, ...]
    # Search keys by section id (from an optional `<name>.keys.toml` beside the article).
    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    keys_text: str = ""


@dataclass(frozen=True)
class Chunk:
    """A piece of one section; `text == article.text[start:end]`."""

    chunk_id: str
    article: str
    article_title: str
    section_id: str
    section_title: str
    position: int  # chunk index within the article
    section_position: int  # section index within the article
    start: int
    end: int
    text: str

    def embedding_text(self) -> str:
        """Text given to the embedding model: section title as context, then the chunk."""
        return f"{self.section_title}. {self.text}"

    def metadata(self) -> dict[str, str | int]:
        data = asdict(self)
        data.pop("text")
        return data

    @classmethod
    def from_metadata(cls, text: str, meta: dict) -> Chunk:
        fields = {k: meta[k] for k in cls.__dataclass_fields__ if k != "text"}
        return cls(text=text, **fields)


def slugify(text: str) -> str:
    """Lower-case ASCII slug: 'Don’t wait!' -> 'dont-wait'."""
    norm = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    norm = re.sub(r"['’]", "", norm.lower())
    return re.sub(r"[^a-z0-9]+", "-", norm).strip("-") or "section"


def approx_tokens(text: str) -> int:
    """Estimate WordPiece tokens (words and punctuation, plus a margin for split words)."""
    return math.ceil(len(_TOKENISH.findall(text)) * 1.15)


def clean_plain_article(raw: str) -> str:
    """Turn a plain-text countdown article (like the seed) into Markdown with section ids.

    Drops image-credit lines, turns 'N. Title' lines into `## N. Title {#tip-N}`, the
    text before the first tip into `## Introduction {#intro}`, and a short heading-like
    line after the last tip into the `{#conclusion}` section.
    """
    lines = [ln.rstrip() for ln in raw.replace("\r\n", "\n").split("\n")]
    paras: list[str] = []
    buf: list[str] = []
    for ln in lines:
        if _IMAGE_CREDIT.match(ln):
            ln = ""
        if ln.strip():
            buf.append(ln.strip())
        elif buf:
            paras.append(" ".join(buf))
            buf = []
    if buf:
        paras.append(" ".join(buf))

    out: list[str] = []
    seen_tip = False
    for p in paras:
        tip = _TIP_HEADING.match(p)
        if tip and not p.endswith((".", "?", "!")):
            seen_tip = True
            out += [f"## {p} {{#tip-{int(tip.group(1))}}}", ""]
        elif seen_tip and _looks_like_heading(p):
            out += [f"## {p} {{#conclusion}}", ""]
        else:
            if not out:
                out += ["## Introduction {#intro}", ""]
            out += [p, ""]
    return "\n".join(out).rstrip() + "\n"


def _looks_like_heading(p: str) -> bool:
    return len(p) <= 80 and not p.endswith((".", "?", "!", ":", ",")) and p[:1].isupper()


def parse_article(path: Path, text: str) -> Article:
    """Find the title and the sections of one Markdown (or cleaned text) article."""
    slug = slugify(path.stem)
    title = path.stem.replace("-", " ").title()
    front = _FRONT_MATTER.match(text)
    body_start = front.end() if front else 0
    if front:
        m = re.search(r'^title:\s*"?(.*?)"?\s*$', front.group(1), re.MULTILINE)
        if m:
            title = m.group(1)

    headings: list[tuple[int, int, int, str, str]] = []  # level, line start, body start, id, title
    used: set[str] = set()
    pos = body_start
    for line in text[body_start:].splitlines(keepends=True):
        m = _MD_HEADING.match(line.rstrip("\n"))
        if m:
            level, htitle, explicit = len(m.group(1)), m.group(2).strip(), m.group(3)
            if level == 1 and not front:
                title = htitle
            if level >= 2:
                tip = _TIP_HEADING.match(htitle)
                sid = explicit or (f"tip-{int(tip.group(1))}" if tip else slugify(htitle))
                base, n = sid, 2
                while sid in used:
                    sid, n = f"{base}-{n}", n + 1
                used.add(sid)
                headings.append((level, pos, pos + len(line), sid, htitle))
            else:
                headings.append((level, pos, pos + len(line), "", htitle))
        pos += len(line)

    sections: list[Section] = []
    # Text before the first level-2 heading (after any H1) is the introduction.
    first_h2 = next((h for h in headings if h[0] >= 2), None)
    intro_start = max([h[2] for h in headings if h[0] == 1 and (not first_h2 or h[1] < first_h2[1])]
                      or [body_start])
    intro_end = first_h2[1] if first_h2 else len(text)
    if text[intro_start:intro_end].strip() and "intro" not in used:
        sections.append(_section(slug, "intro", "Introduction", text, intro_start, intro_end, 0))
    h2s = [h for h in headings if h[0] >= 2]
    for i, (_lvl, _ls, bstart, sid, htitle) in enumerate(h2s):
        end = h2s[i + 1][1] if i + 1 < len(h2s) else len(text)
        if text[bstart:end].strip():
            sections.append(_section(slug, sid, htitle, text, bstart, end, len(sections)))
    return Article(slug=slug, title=title, path=path, text=text, sections=tuple(sections))


def _section(
    article: str, sid: str, title: str, text: str, start: int, end: int, pos: int
) -> Section:
    # Trim surrounding white space so offsets point at real text.
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Section(article, sid, title, start, end, pos)


def read_article(path: Path) -> Article:
    """Read one corpus file; a non-UTF-8 or empty file is a CorpusError naming it."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"Can't read corpus file {path}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"Corpus file {path} is not UTF-8 text (bad byte at position {exc.start}); "
            "save it as UTF-8 and run `assistant ingest` again."
        ) from exc
    if "\x00" in text:
        raise CorpusError(f"Corpus file {path} looks binary (it contains NUL bytes).")
    text = text.replace("\r\n", "\n")
    if not re.sub(r"^---\n.*?\n---\n", "", text, flags=re.DOTALL).strip():
        raise CorpusError(f"Corpus file {path} has no text.")
    if path.suffix.lower() == ".txt" and not re.search(r"^#{1,6}\s", text, re.MULTILINE):
        text = clean_plain_article(text)
    article = parse_article(path, text)
    if not article.sections:
        raise CorpusError(f"Corpus file {path} has no sections with text.")
    return _with_keys(article)


def _with_keys(article: Article) -> Article:
    """Attach search keys from `<stem>.keys.toml`, if present; unknown sections are an error."""
    path = article.path.with_name(f"{article.path.stem}.keys.toml")
    if not path.is_file():
        return article
    try:
        raw = path.read_text(encoding="utf-8")
        data = tomllib.loads(raw)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, OSError) as exc:
        raise CorpusError(f"Search-key file {path} can't be read: {exc}") from exc
    ids = {s.section_id for s in article.sections}
    keys: dict[str, tuple[str, ...]] = {}
    for sid, entry in (data.get("sections") or {}).items():
        if sid not in ids:
            raise CorpusError(f"Search-key file {path} names section {sid!r}, not in the article.")
        keys[sid] = tuple(str(k).strip() for k in entry.get("keys", []) if str(k).strip())
    return replace(article, keys=keys, keys_text=raw)


def load_corpus(corpus_dir: Path) -> list[Article]:
    """Read every Markdown or text article in the corpus folder, in name order."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"Corpus folder {corpus_dir} does not exist.")
    files = sorted(
        p for p in corpus_dir.iterdir()
        if p.is_file() and p.suffix.lower() in ARTICLE_SUFFIXES and not p.name.startswith(".")
        and p.name.lower() != "readme.md"
    )
    if not files:
        raise CorpusError(f"Corpus folder {corpus_dir} has no .md or .txt articles.")
    return [read_article(p) for p in files]


def split_sentences(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Sentence spans (start, end) within `text`, shifted by `offset`."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return [(s + offset, e + offset) for s, e in trim_spans(text, spans)]


def trim_spans(text: str, spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Shrink each (start, end) span past surrounding white space; drop empty ones."""
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out


def chunk_article(article: Article, max_tokens: int = 160, overlap: int = 1) -> list[Chunk]:
    """Split each section into chunks of whole sentences, never across sections."""
    chunks: list[Chunk] = []
    for section in article.sections:
        body = article.text[section.start : section.end]
        sents = split_sentences(body, section.start)
        i = 0
        while i < len(sents):
            j, size = i, 0
            while j < len(sents):
                t = approx_tokens(article.text[sents[j][0] : sents[j][1]])
                if j > i and size + t > max_tokens:
                    break
                size += t
                j += 1
            start, end = sents[i][0], sents[j - 1][1]
            chunks.append(
                Chunk(
                    chunk_id=f"{article.slug}:{section.section_id}:{len(chunks)}",
                    article=article.slug,
                    article_title=article.title,
                    section_id=section.section_id,
                    section_title=section.title,
                    position=len(chunks),
                    section_position=section.position,
                    start=start,
                    end=end,
                    text=article.text[start:end],
                )
            )
            if j >= len(sents):
                break
            # Step back `overlap` sentences so neighbouring chunks share a little context.
            i = max(j - overlap, i + 1)
    return chunks


def chunk_corpus(
    articles: Iterable[Article], max_tokens: int = 160, overlap: int = 1
) -> list[Chunk]:
    return [c for a in articles for c in chunk_article(a, max_tokens, overlap)]


def corpus_fingerprint(articles: Iterable[Article], *parts: object) -> str:
    """Hash of every article's name and text, plus settings that shape the index."""
    h = hashlib.sha256()
    h.update(f"chunker:{CHUNKER_VERSION}".encode())
    for a in articles:
        h.update(b"\0" + a.path.name.encode() + b"\0" + a.text.encode())
        h.update(b"\0" + a.keys_text.encode())
    for part in parts:
        h.update(b"\0" + repr(part).encode())
    return h.hexdigest()


def find_verbatim(quote: str, articles: Iterable[Article]) -> tuple[str, int] | None:
    """Where a quote stands verbatim in the corpus: (article slug, offset), or None."""
    q = quote.strip()
    if not q:
        return None
    for a in articles:
        i = a.text.find(q)
        if i >= 0:
            return a.slug, i
    return None


__all__ = [
    "Article",
    "Chunk",
    "Section",
    "approx_tokens",
    "chunk_article",
    "chunk_corpus",
    "clean_plain_article",
    "corpus_fingerprint",
    "find_verbatim",
    "load_corpus",
    "parse_article",
    "read_article",
    "slugify",
    "split_sentences",
    "trim_spans",
]
