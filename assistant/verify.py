"""Check an answer against what was retrieved: citations, quotes, and support per sentence.

Support is measured with the same embedding model as retrieval, plus word overlap.
Calibrated on evals/data/verify_calibration.jsonl (39 faithful paraphrases of the
article, 29 plausible on-topic claims it never makes, some naming its real sources),
each scored against the sentences of its own section:

    cosine alone         paraphrases min 0.522   unsupported max 0.697  (overlap)
    word overlap alone   paraphrases min 0.33    unsupported max 0.33   (overlap)
    rule below           keeps 39/39 paraphrases, catches 29/29 unsupported

so a sentence is supported when its best cosine to a retrieved sentence is at least
SUPPORT_STRONG, or at least SUPPORT_MIN with at least OVERLAP_MIN of its content words
in that passage; a figure it states must appear in the passages; and names are taken
out before both measures (an invented claim about "Anchor Light Therapy" otherwise
scored 0.73 against the article's sentence naming it). Dropping a good sentence costs
less than showing an invented one, so the rule leans that way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .corpus import trim_spans
from .respond import SentenceBank, content_words

SUPPORT_STRONG = 0.75
SUPPORT_MIN = 0.50
OVERLAP_MIN = 0.40
# More than this share of an answer's claims unsupported: replace rather than repair.
REPLACE_SHARE = 0.5

_CITE = re.compile(r"\s*\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_QUOTE = re.compile(r"[\"“]([^\"“”]{12,}?)[\"”]")
# Figures are where invented facts hide ("70 percent", "30-day"): a figure the passages
# don't contain makes a sentence unsupported whatever its similarity.
_NUMBER = re.compile(r"\b\d+(?:[.,]\d+)?\s*(?:%|percent\b)?|\bpercent\b", re.IGNORECASE)
# Two or more capitalised words, or one that does not start the sentence: a name.
_NAME = re.compile(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)+|(?<=[a-z,;:] )[A-Z][a-z]+")
_SENT_END = re.compile(r"(?<=[.!?…])[\"”’)]*\s+(?=[\"“‘(*A-Z0-9])")
# Normalise quote marks and dashes for the verbatim check, one character for one, so an
# offset in the normalised text is the same offset in the corpus.
_NORMALISE = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-"})


@dataclass
class SentenceCheck:
    """One sentence of an answer and what verification found."""

    text: str
    start: int
    end: int
    cited: list[int] = field(default_factory=list)
    support: float = 0.0
    overlap: float = 0.0
    source: int | None = None  # 1-based passage that supports it best
    sentence: int | None = None  # index in the sentence bank of the closest sentence
    ok: bool = True
    reason: str = ""  # why it was dropped, or why it needed no support
    kind: Literal["claim", "question", "framing", "lead"] = "claim"


@dataclass
class Verdict:
    """The result: the repaired text (still with [n] markers) and what was wrong."""

    text: str
    checks: list[SentenceCheck]
    bad_citations: list[int] = field(default_factory=list)
    bad_quotes: list[str] = field(default_factory=list)
    action: Literal["ok", "repaired", "replace"] = "ok"

    @property
    def dropped(self) -> list[SentenceCheck]:
        return [c for c in self.checks if not c.ok]

    def summary(self) -> str | None:
        """The line a reply carries: what verification changed, or None."""
        if self.action == "repaired":
            n = len(self.dropped)
            return f"repaired: dropped {n} unsupported sentence{'s' if n != 1 else ''}"
        if self.action == "replace":
            return "replaced by the offline reply"
        return None


def split_answer(text: str) -> list[tuple[int, int]]:
    """Sentence spans of an answer, line by line (lists and paragraphs stay apart)."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\n")
        start = 0
        for m in _SENT_END.finditer(body):
            spans.append((pos + start, pos + m.start() + len(m.group(0).rstrip())))
            start = m.end()
        spans.append((pos + start, pos + len(body)))
        pos += len(line)
    return trim_spans(text, spans)


def strip_citations(text: str) -> str:
    return _CITE.sub("", text).strip()


class Verifier:
    """Checks answers against retrieved passages using the corpus sentence bank."""

    def __init__(self, bank: SentenceBank, embedder: Any) -> None:
        self.bank = bank
        self.embedder = embedder
        self._norm_texts = [(a.slug, a.text.translate(_NORMALISE), a.text) for a in bank.articles]
        self._warm: dict[str, list[float]] = {}

    # -- embeddings

    def warm(self, partial_answer: str) -> int:
        """Embed the finished sentences of an answer still streaming; returns how many.

        Called between streamed pieces, so the work overlaps the endpoint's generation
        and `check()` at the end only embeds the last sentence.
        """
        spans = split_answer(partial_answer)[:-1]  # the last may be unfinished
        done = 0
        for s, e in spans:
            text = _without_names(strip_citations(partial_answer[s:e]))
            if text and text not in self._warm:
                self._warm[text] = self.embedder.embed_query(text)
                done += 1
        return done

    def _embed(self, texts: list[str]) -> list[list[float]]:
        # Sessions share one Verifier: read the shared memory once, work on a local copy.
        known = {t: self._warm.get(t) for t in texts}
        missing = [t for t, v in known.items() if v is None]
        if missing:
            for t, v in zip(missing, self.embedder.embed_documents(missing), strict=True):
                known[t] = v
        if len(self._warm) > 512:  # a small bounded memory of recent answers' sentences
            self._warm.clear()
        return [known[t] for t in texts]

    # -- quotes

    def verbatim(self, quote: str) -> str | None:
        """The corpus's exact text for a quote (quote marks and dashes forgiven), or None."""
        q = quote.strip().translate(_NORMALISE)
        if not q:
            return None
        for _slug, norm, original in self._norm_texts:
            i = norm.find(q)
            if i >= 0:
                return original[i : i + len(q)]
        return None

    def check_quotes(self, quotes: Sequence[str]) -> list[str]:
        """Quotes that are not verbatim in the corpus (exactly, character for character)."""
        bad = []
        for q in quotes:
            if not any(q in original for _s, _n, original in self._norm_texts):
                bad.append(q)
        return bad

    # -- answers

    def check(self, answer: str, passages: Sequence[Any], *, message: str = "") -> Verdict:
        """Check an LLM answer that cites passages as [n]; repair it or say to replace it."""
        spans = split_answer(answer)
        checks: list[SentenceCheck] = []
        bad_citations: set[int] = set()
        bad_quotes: list[str] = []
        fixed: dict[int, str] = {}  # sentence index -> text with quotes made verbatim
        passage_idx = [self.bank.within(p.chunk) for p in passages]
        passage_words = [set().union(*(self.bank.words[i] for i in idx)) for idx in passage_idx]
        passage_numbers = {
            n.lower().strip() for p in passages for n in _NUMBER.findall(p.chunk.text)
        }

        to_embed: list[int] = []
        for k, (s, e) in enumerate(spans):
            raw = answer[s:e]
            c = SentenceCheck(raw, s, e)
            for m in _CITE.finditer(raw):
                for n in re.split(r"\s*[,;]\s*", m.group(1)):
                    c.cited.append(int(n))
            plain = strip_citations(raw)
            bare = plain.strip("*_#>- ").strip()
            invalid = [n for n in c.cited if not 1 <= n <= len(passages)]
            if invalid:
                bad_citations.update(invalid)
                c.ok, c.reason = False, f"cites passage {invalid[0]}, which was not retrieved"
            # Quoted spans must be the article's words; a near-miss on quote marks or
            # dashes is repaired to the exact corpus text, anything else fails.
            new = raw
            for m in _QUOTE.finditer(raw):
                exact = self.verbatim(m.group(1))
                if exact is None:
                    bad_quotes.append(m.group(1))
                    c.ok, c.reason = False, "quotes words that are not in the article"
                elif exact != m.group(1):
                    new = new.replace(m.group(1), exact)
            if new != raw:
                fixed[k] = new
            if not c.ok:
                pass  # already failed on a citation or a quote
            elif bare.endswith("?"):
                c.kind, c.reason = "question", "a question makes no claim"
            elif bare.endswith(":") and len(bare.split()) <= 12:
                c.kind, c.reason = "lead", "introduces what follows"
            elif k == 0 and not c.cited and _is_framing(bare):
                c.kind, c.reason = "framing", "acknowledges what the person said"
            elif not bare or not re.search(r"[A-Za-z]{2}", bare):
                c.kind, c.reason = "lead", "no words"
            else:
                to_embed.append(k)
            checks.append(c)

        if to_embed:
            texts = [_without_names(strip_citations(checks[k].text)) for k in to_embed]
            vecs = np.asarray(self._embed(texts), dtype=np.float32)
            for k, vec in zip(to_embed, vecs, strict=True):
                self._support(checks[k], vec, passage_idx, passage_words, passage_numbers)

        claims = [c for c in checks if c.kind == "claim"]
        dropped = [c for c in checks if not c.ok]
        supported_claims = [c for c in claims if c.ok]
        if not dropped:
            action: Literal["ok", "repaired", "replace"] = "ok"
        elif not supported_claims or len(dropped) > REPLACE_SHARE * max(1, len(claims)):
            action = "replace"
        else:
            action = "repaired"
        text = _rebuild(answer, spans, checks, fixed)
        return Verdict(text, checks, sorted(bad_citations), bad_quotes, action)

    def _support(self, c: SentenceCheck, vec: np.ndarray, passage_idx: list[list[int]],
                 passage_words: list[set[str]], passage_numbers: set[str]) -> None:
        best, best_p, best_i = -1.0, None, None
        for relaxed in (False, True):
            for p, idx in enumerate(passage_idx, 1):
                # A cited passage is where the support should be; an uncited sentence may
                # be supported by any retrieved passage.
                if not idx or (c.cited and p not in c.cited and not relaxed):
                    continue
                sims = self.bank.vectors[idx] @ vec
                j = int(np.argmax(sims))
                if float(sims[j]) > best:
                    best, best_p, best_i = float(sims[j]), p, idx[j]
            if best_p is not None:
                break
        # Names ("Anchor Light Therapy", "Lisa Firestone") don't vouch for a claim: an
        # invented claim about a real source shares them. Overlap counts other words only.
        names = {w for n in _NAME.findall(strip_citations(c.text)) for w in content_words(n)}
        words = [w for w in content_words(c.text) if w not in names]
        overlap = (
            sum(w in passage_words[best_p - 1] for w in words) / len(words)
            if words and best_p else 0.0
        )
        c.support, c.overlap = round(best, 4), round(overlap, 4)
        c.source, c.sentence = best_p, best_i
        numbers = {n.lower().strip() for n in _NUMBER.findall(strip_citations(c.text))}
        if numbers - passage_numbers:
            c.ok, c.reason = False, "states a number the passages don't"
        elif best >= SUPPORT_STRONG or (best >= SUPPORT_MIN and overlap >= OVERLAP_MIN):
            c.ok, c.reason = True, "supported"
        else:
            c.ok, c.reason = False, "not supported by the retrieved passages"


_FRAMING_START = re.compile(
    r"^(it sounds|that sounds|this sounds|i'?m (?:so |really )?sorry|i hear|i can hear|"
    r"it makes sense|that makes sense|thank you|thanks for|i'?m glad|it'?s (?:really )?"
    r"(?:hard|painful|understandable|lonely|tough|normal to feel)|that'?s (?:really )?"
    r"(?:hard|painful|a lot|tough|understandable|lonely)|what a|feeling)\b",
    re.IGNORECASE,
)


def _is_framing(sentence: str) -> bool:
    """An opening that acknowledges the person, with no claim about the world."""
    words = sentence.split()
    return (
        len(words) <= 30
        and not _NUMBER.search(sentence)
        and bool(_FRAMING_START.match(sentence))
    )


def _without_names(text: str) -> str:
    """The sentence with names taken out, so a name alone can't make a claim look supported."""
    out = " ".join(_NAME.sub(" ", text).split())
    return out if len(out.split()) >= 3 else text


def _rebuild(answer: str, spans: list[tuple[int, int]], checks: list[SentenceCheck],
             fixed: dict[int, str]) -> str:
    out: list[str] = []
    pos = 0
    for k, ((s, e), c) in enumerate(zip(spans, checks, strict=True)):
        out.append(answer[pos:s])
        if c.ok:
            out.append(fixed.get(k, answer[s:e]))
        pos = e
    out.append(answer[pos:])
    text = "".join(out)
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    return text.strip()


__all__ = [
    "OVERLAP_MIN",
    "SUPPORT_MIN",
    "SUPPORT_STRONG",
    "SentenceCheck",
    "Verdict",
    "Verifier",
    "split_answer",
    "strip_citations",
]
