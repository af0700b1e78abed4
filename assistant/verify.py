"""Check an answer against what was retrieved: citations, quotes, and support per sentence.

Every sentence is checked, whatever its script, punctuation or place in the answer:

- echo: text repeating the prompt (its instructions, the passage scaffolding, chat
  template tokens) is found by overlap with the prompt actually sent and removed first;
- repeat: a sentence said before counts once;
- truncated: an answer cut off by the token limit loses its unfinished last sentence;
- framing and questions may only reflect the person's words, the passages and the
  written acknowledgement templates: a new content word or figure fails them, and a
  diagnosis or a statistic is never framing;
- claims need support from a retrieved passage (below); a verbatim article sentence
  cited to the wrong passage is re-cited to the one it comes from.

Support is measured with the same embedding model as retrieval, plus word overlap.
Calibrated on evals/data/verify_calibration.jsonl (39 faithful paraphrases of the
article, 29 plausible on-topic claims it never makes, some naming its real sources),
each scored against the sentences of its own section:

    cosine alone         paraphrases min 0.522   unsupported max 0.697  (overlap)
    word overlap alone   paraphrases min 0.33    unsupported max 0.33   (overlap)
    rule below           keeps 39/39 paraphrases, catches 29/29 unsupported

so a sentence is supported when its best cosine to a retrieved sentence is at least
SUPPORT_STRONG, or at least SUPPORT_MIN with at least OVERLAP_MIN of its content words
in that passage; a figure, a diagnosis, a statistic or a prediction it states must be in
the passages; and names are taken out before both measures (an invented claim about
"Anchor Light Therapy" otherwise scored 0.73 against the article's sentence naming it).
Dropping a good sentence costs less than showing an invented one, so the rule leans
that way. An answer that loses more than LOST_SHARE of its words or sentences in
checking is replaced whole by the offline reply (chosen on the recorded real-model
transcripts, tests/data/llm_transcripts.jsonl: see `python -m evals answers --real-llm`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

import numpy as np

from .corpus import trim_spans
from .respond import SentenceBank, content_words, load_replies
from .text import CITE_MARKER, QUOTED, SENTENCE_END

SUPPORT_STRONG = 0.75
SUPPORT_MIN = 0.50
OVERLAP_MIN = 0.40
# More than this share of an answer's words (or sentences) lost in checking: the offline
# reply instead. On the recorded transcripts, answers that kept their substance lost at
# most ~30%; echoes and loops lost 45-95% (see the module docstring).
LOST_SHARE = 0.4

# Figures are where invented facts hide ("70 percent", "30-day"): a figure the passages
# don't contain makes a sentence unsupported whatever its similarity.
_NUMBER = re.compile(r"\b\d+(?:[.,]\d+)?\s*(?:%|percent\b)?|\bpercent\b|%", re.IGNORECASE)
# Two or more capitalised words, or one that does not start the sentence: a name.
_NAME = re.compile(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)+|(?<=[a-z,;:] )[A-Z][a-z]+")
# Normalise quote marks and dashes for the verbatim check, one character for one, so an
# offset in the normalised text is the same offset in the corpus.
_NORMALISE = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-"})
# Words that label a person: never framing, and a claim only where the passages say them.
_DIAGNOSIS = re.compile(
    r"\b(depress\w*|anxi(?:ety|ous) disorder|addict\w*|narcissis\w*|bipolar|adhd|autis\w*|"
    r"personality disorder|borderline|sociopath\w*|psychopath\w*|co-?dependen\w*|ptsd|"
    r"ocd|disorder\w*|mentally ill|mental illness|avoidant|trauma\w*|diagnos\w*|"
    r"alcoholi\w*|toxic|abusive|cheating|affair)\b",
    re.IGNORECASE,
)
# How statistics and forecasts are phrased, with or without a figure.
_STATISTIC = re.compile(
    r"\b(most|majority|minority|half|third|quarter|percent\w*|statistic\w*|studies|study|"
    r"research\w*|survey\w*|on average|average|\d+ (?:in|out of) \d+|one in \w+|"
    r"(?:twice|three times) as|more likely|less likely)\b|%",
    re.IGNORECASE,
)
_PREDICTION = re.compile(
    r"\b(will|won'?t|going to|end(?:s)? up|bound to|inevitabl\w*|probabl\w*|likely|"
    r"unlikely|certainly|definitely|guarantee\w*|within (?:a|one|two|three|\d+) "
    r"(?:day|week|month|year)s?|unless)\b",
    re.IGNORECASE,
)
_FRAMING_START = re.compile(
    r"^(it sounds|that sounds|this sounds|i'?m (?:so |really )?sorry|i hear|i can hear|"
    r"it makes sense|that makes sense|thank you|thanks for|i'?m glad|it'?s (?:really )?"
    r"(?:hard|painful|understandable|lonely|tough|normal to feel)|that'?s (?:really )?"
    r"(?:hard|painful|a lot|tough|understandable|lonely)|what a|feeling)\b",
    re.IGNORECASE,
)
# Words an acknowledgement or a closing question uses without taking them from anyone.
_DISCOURSE = frozenset(
    """sounds sound hear hard painful understandable lonely tough normal sorry glad thank
    thanks sharing share makes sense really difficult frustrating exhausting heavy carry
    article passage passages suggests suggest says mentions describes talks idea ideas step
    steps small gentle next start started possible might first one two three few feels
    right now today tonight week together moment hurt hurts lot heard telling told""".split()
)
# Chat-template and role tokens a model may print when it echoes its prompt.
_TEMPLATE_TOKEN = re.compile(
    r"(?:<\|im_start\|>|<start_of_turn>)[ \t]*(?:system|user|assistant|model)?|"
    r"<\|[^|<>]{1,40}\|>|</?s>|<(?:start|end)_of_turn>|\[/?INST\]|<</?SYS>>|"
    r"^\s*(?:system|user|assistant|model|human|ai)\s*:\s*|\{[a-z_]{3,30}\}",
    re.IGNORECASE | re.MULTILINE,
)
# The passage scaffolding of the prompt: its header, "[2] (tip 4: Be honest)" labels.
_SCAFFOLD = re.compile(
    r"^\s*\**\s*(?:numbered )?passages?\s*\**\s*:|"
    r"\[\d+\]\s*\((?:intro\w*|conclusion|tip \d+)\s*:[^)]*\)|"
    r"^\s*\(?(?:intro\w*|conclusion|tip \d+)\s*:\s*[^)]{0,80}\)",
    re.IGNORECASE,
)
_LIST_ITEM = re.compile(r"^(\s*)(\d{1,2})([.)])(\s+|$)")
_END_PUNCT = ("." , "!", "?", "…", "。", "！", "？", ":", '"', "”", "’", ")")
_TOKENS = re.compile(r"[^\W_]+", re.UNICODE)
# Word n-grams this long that also occur in the instructions make a sentence an echo.
_ECHO_N = 4
_ECHO_SHARE = 0.4

Kind = Literal["claim", "question", "framing", "lead", "echo", "token", "repeat",
               "truncated", "empty"]
_LOST_KINDS = ("echo", "token", "repeat", "truncated")


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
    kind: Kind = "claim"
    recited: int | None = None  # the passage it was re-cited to, when its [n] was wrong
    miscited: bool = False  # it cited a passage number that was not in the prompt

    @property
    def words(self) -> int:
        return len(_TOKENS.findall(strip_citations(self.text)))


@dataclass
class Verdict:
    """The result: the repaired text (still with [n] markers) and what was wrong."""

    text: str
    checks: list[SentenceCheck]
    bad_citations: list[int] = field(default_factory=list)
    bad_quotes: list[str] = field(default_factory=list)
    action: Literal["ok", "repaired", "replace"] = "ok"
    lost_words: float = 0.0  # share of the answer's words removed in checking
    lost_sentences: float = 0.0

    @property
    def dropped(self) -> list[SentenceCheck]:
        return [c for c in self.checks if not c.ok and c.kind != "empty"]

    @property
    def echoes(self) -> list[SentenceCheck]:
        return [c for c in self.checks if c.kind in ("echo", "token")]

    def summary(self) -> str | None:
        """The line a reply carries, in plain words: what checking changed, or None."""
        if self.action == "replace":
            return ("replaced by the offline reply: the model's answer did not hold up "
                    "against the article")
        if self.action != "repaired":
            return None
        parts = []
        unsupported = [c for c in self.dropped if c.kind not in _LOST_KINDS]
        if unsupported:
            parts.append(_count(len(unsupported), "sentence") + " the article doesn't support")
        if self.echoes:
            parts.append("text repeating the assistant's instructions")
        repeats = [c for c in self.checks if c.kind == "repeat"]
        if repeats:
            parts.append(_count(len(repeats), "repeated sentence"))
        if any(c.kind == "truncated" for c in self.checks):
            parts.append("an unfinished last sentence")
        recited = sum(c.recited is not None for c in self.checks)
        note = f"shortened: removed {_join(parts)}" if parts else ""
        if recited:
            fix = f"{_count(recited, 'quote')} re-cited to the section it comes from"
            note = f"{note}; {fix}" if note else fix
        return f"repaired: {note}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def split_answer(text: str) -> list[tuple[int, int]]:
    """Sentence spans of an answer, line by line (lists and paragraphs stay apart)."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        start = 0
        item = _LIST_ITEM.match(body)  # "1. Even small…": the number is not a sentence
        for m in SENTENCE_END.finditer(body, item.end() if item else 0):
            spans.append((pos + start, pos + m.start() + len(m.group(0).rstrip())))
            start = m.end()
        spans.append((pos + start, pos + len(body)))
        pos += len(line)
    return trim_spans(text, spans)


def strip_citations(text: str) -> str:
    """The text without its [n] markers."""
    return CITE_MARKER.sub("", text).strip()


def _plain(text: str) -> str:
    """The sentence's own words: no [n] markers, list number, bullet or emphasis marks."""
    bare = _TEMPLATE_TOKEN.sub(" ", strip_citations(text)).strip("*_#>-• \t")
    return _LIST_ITEM.sub("", bare).strip("*_#>-• \t")


def shingles(text: str, n: int = _ECHO_N) -> set[tuple[str, ...]]:
    """Lower-cased word n-grams of a text."""
    words = [w.lower() for w in _TOKENS.findall(text)]
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def prompt_leaks(shown: str, instructions: str) -> list[str]:
    """Find prompt text in what a person was shown (empty when nothing leaked).

    That is 8-word runs of the instructions, the passage scaffolding, template tokens.
    """
    found = [" ".join(g) for g in sorted(shingles(shown, 8) & shingles(instructions, 8))]
    found += [m.group(0) for m in _TEMPLATE_TOKEN.finditer(shown) if m.group(0).strip()]
    found += [m.group(0) for line in shown.splitlines() if (m := _SCAFFOLD.search(line))]
    return found


@cache
def _template_words() -> frozenset[str]:
    """Content words of the written reply templates (acknowledgements, leads)."""
    return frozenset(w for s in _strings(load_replies()) for w in content_words(s))


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _novel_words(text: str, allowed: set[str]) -> list[str]:
    """Words of `text` found neither in `allowed` nor among the plain discourse words."""
    latin = [w for w in content_words(text) if w not in allowed and w not in _DISCOURSE]
    other = [w.lower() for w in _TOKENS.findall(text)
             if not w.isascii() and len(w) > 1 and w.lower() not in allowed]
    return latin + other


@dataclass
class _Context:
    """What one answer is checked against."""

    passages: Sequence[Any]
    passage_idx: list[list[int]]
    passage_words: list[set[str]]
    passage_text: str  # all passages, lower-cased, for figures and labels
    allowed: set[str]  # words framing may use: message, passages, templates
    message_numbers: set[str]
    prompt: set[tuple[str, ...]]


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
        for s, e in spans[-8:]:  # a looping model: only the newest sentences are new
            text = _without_names(_plain(partial_answer[s:e]))
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
        return [known[t] for t in texts]  # type: ignore[misc]

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

    def check(self, answer: str, passages: Sequence[Any], *, message: str = "",
              prompt: str = "", truncated: bool = False) -> Verdict:
        """Check an LLM answer that cites passages as [n]; repair it or say to replace it.

        `prompt` is the instruction text sent with it (echoes of it are removed);
        `truncated` says the endpoint stopped at the token limit.
        """
        ctx = self._context(passages, message, prompt)
        spans = split_answer(answer)
        checks: list[SentenceCheck] = []
        bad_citations: set[int] = set()
        bad_quotes: list[str] = []
        fixed: dict[int, str] = {}  # sentence index -> repaired text
        seen: set[str] = set()
        to_embed: list[int] = []
        for k, (s, e) in enumerate(spans):
            c = SentenceCheck(answer[s:e], s, e)
            checks.append(c)
            if self._screen(c, ctx, seen, last=truncated and k == len(spans) - 1):
                continue
            new = self._check_marks(c, ctx, bad_citations, bad_quotes)
            if new != c.text:
                fixed[k] = new
            if c.ok and self._classify(c, ctx):
                to_embed.append(k)

        if to_embed:
            texts = [_without_names(_plain(checks[k].text)) for k in to_embed]
            vecs = np.asarray(self._embed(texts), dtype=np.float32)
            for k, vec in zip(to_embed, vecs, strict=True):
                self._support(checks[k], vec, ctx)
                recited = checks[k].recited
                if recited is not None:
                    fixed[k] = _recite(fixed.get(k, checks[k].text), recited)

        return self._verdict(answer, spans, checks, fixed, bad_citations, bad_quotes)

    def _context(self, passages: Sequence[Any], message: str, prompt: str) -> _Context:
        passage_idx = [self.bank.within(p.chunk) for p in passages]
        passage_words = [set().union(*(self.bank.words[i] for i in idx)) for idx in passage_idx]
        texts = " ".join(p.chunk.text for p in passages)
        allowed = set(content_words(message)) | set().union(*passage_words, set())
        allowed |= set(content_words(texts)) | _template_words()
        allowed |= {w.lower() for w in _TOKENS.findall(message) if not w.isascii()}
        return _Context(
            passages=passages,
            passage_idx=passage_idx,
            passage_words=passage_words,
            passage_text=texts.lower().translate(_NORMALISE),
            allowed=allowed,
            message_numbers={n.lower().strip() for n in _NUMBER.findall(message)},
            prompt=shingles(prompt),
        )

    def _screen(self, c: SentenceCheck, ctx: _Context, seen: set[str], *, last: bool) -> bool:
        """Mark what is not the answer's own text (echo, repeat, cut-off, empty); True if so."""
        plain = strip_citations(c.text)
        body = _TEMPLATE_TOKEN.sub(" ", plain)
        content = _LIST_ITEM.sub("", body.strip("*_#>-• \t")).strip("*_#>-• \t")
        if not re.search(r"[^\W_]", content):
            if body.strip() != plain.strip():  # only template tokens were left
                c.ok, c.kind, c.reason = False, "token", "a chat template token"
            else:
                c.ok, c.kind, c.reason = False, "empty", "no words (an empty list item)"
            return True
        if _SCAFFOLD.search(body) or self._echoes(content, ctx.prompt):
            c.ok, c.kind, c.reason = False, "echo", "repeats the prompt"
            return True
        key = " ".join(w.lower() for w in _TOKENS.findall(content))
        if key in seen:
            c.ok, c.kind, c.reason = False, "repeat", "said already"
            return True
        seen.add(key)
        if last and not plain.rstrip("*_ ").endswith(_END_PUNCT):
            c.ok, c.kind, c.reason = False, "truncated", "cut off by the token limit"
            return True
        return False

    @staticmethod
    def _echoes(text: str, prompt: set[tuple[str, ...]]) -> bool:
        if not prompt:
            return False
        grams = shingles(text)
        if not grams:
            return False
        return sum(g in prompt for g in grams) / len(grams) >= _ECHO_SHARE

    def _check_marks(self, c: SentenceCheck, ctx: _Context, bad_citations: set[int],
                     bad_quotes: list[str]) -> str:
        """Read the [n] markers and the quotes; returns the text with quotes made exact."""
        for m in CITE_MARKER.finditer(c.text):
            c.cited += [int(n) for n in re.split(r"\s*[,;]\s*", m.group(1))]
        invalid = [n for n in c.cited if not 1 <= n <= len(ctx.passages)]
        if invalid:
            # Not a reason to drop a supported sentence: it is re-cited or dropped below.
            bad_citations.update(invalid)
            c.cited = [n for n in c.cited if n not in invalid]
            c.miscited = True
        new = c.text
        # Quoted spans must be the article's words; a near-miss on quote marks or
        # dashes is repaired to the exact corpus text, anything else fails.
        for m in QUOTED.finditer(c.text):
            exact = self.verbatim(m.group(1))
            if exact is None:
                bad_quotes.append(m.group(1))
                c.ok, c.reason = False, "quotes words that are not in the article"
            elif exact != m.group(1):
                new = new.replace(m.group(1), exact)
        return new

    def _classify(self, c: SentenceCheck, ctx: _Context) -> bool:
        """Check what needs no passage (framing, questions, leads); True if it is a claim."""
        bare = _plain(c.text)
        if bare.endswith(("?", "？")):
            c.kind = "question"
        elif bare.endswith(":") and len(bare.split()) <= 12:
            c.kind = "lead"
        elif not c.cited and _FRAMING_START.match(bare):
            c.kind = "framing"
        else:
            return True
        if _DIAGNOSIS.search(bare) or _STATISTIC.search(bare):
            c.ok, c.reason = False, f"a {c.kind} may not diagnose or state a statistic"
            return False
        if _PREDICTION.search(bare) and c.kind == "framing":
            c.kind = "claim"  # a forecast about them is a claim, checked like one
            return True
        numbers = {n.lower().strip() for n in _NUMBER.findall(bare)}
        if numbers - ctx.message_numbers - _numbers_in(ctx.passage_text):
            c.ok, c.reason = False, f"a {c.kind} with a figure nobody gave"
            return False
        novel = _novel_words(bare, ctx.allowed)
        if novel:
            if c.kind == "question":
                c.kind = "claim"  # a question can assert: then it needs support
                return True
            c.ok, c.reason = False, f"words neither the person nor the article used: {novel[0]}"
            return False
        c.reason = {"question": "asks, with their words and the article's",
                    "lead": "introduces what follows",
                    "framing": "reflects what the person said"}[c.kind]
        return False

    def _support(self, c: SentenceCheck, vec: np.ndarray, ctx: _Context) -> None:
        best, best_p, best_i = _best(self.bank.vectors, vec, ctx.passage_idx, c.cited)
        if c.cited and (best < SUPPORT_STRONG or best_p not in c.cited):
            # Cited to the wrong passage? A sentence another passage supports strongly (the
            # article's own words) is re-cited there rather than dropped.
            any_best, any_p, any_i = _best(self.bank.vectors, vec, ctx.passage_idx, [])
            if any_p is not None and any_p not in c.cited and any_best >= SUPPORT_STRONG:
                best, best_p, best_i = any_best, any_p, any_i
                c.recited, c.cited = any_p, [any_p]
        elif not c.cited and c.miscited and best_p is not None and best >= SUPPORT_STRONG:
            c.recited, c.cited = best_p, [best_p]
        # Names ("Anchor Light Therapy", "Lisa Firestone") don't vouch for a claim: an
        # invented claim about a real source shares them. Overlap counts other words only.
        plain = _plain(c.text)
        names = {w for n in _NAME.findall(plain) for w in content_words(n)}
        words = [w for w in content_words(plain) if w not in names]
        overlap = (
            sum(w in ctx.passage_words[best_p - 1] for w in words) / len(words)
            if words and best_p else 0.0
        )
        c.support, c.overlap = round(best, 4), round(overlap, 4)
        c.source, c.sentence = best_p, best_i
        numbers = {n.lower().strip() for n in _NUMBER.findall(plain)}
        labels = _labels(plain, ctx.passage_text)
        if numbers - _numbers_in(ctx.passage_text):
            c.ok, c.reason = False, "states a number the passages don't"
        elif labels:
            c.ok, c.reason = False, f"says '{labels[0]}', which the passages don't"
        elif c.miscited and c.recited is None:
            c.ok, c.reason = False, "cites a passage that was not retrieved"
        elif best >= SUPPORT_STRONG or (best >= SUPPORT_MIN and overlap >= OVERLAP_MIN):
            c.ok, c.reason = True, "supported"
        else:
            c.ok, c.reason = False, "not supported by the retrieved passages"
        if not c.ok:
            c.recited = None

    def _verdict(self, answer: str, spans: list[tuple[int, int]],
                 checks: list[SentenceCheck], fixed: dict[int, str],
                 bad_citations: set[int], bad_quotes: list[str]) -> Verdict:
        counted = [c for c in checks if c.kind != "empty"]
        total_words = sum(c.words for c in counted) or 1
        lost = [c for c in counted if not c.ok]
        lost_words = sum(c.words for c in lost) / total_words
        # A line of template tokens is no sentence; its words still count as lost.
        sentences = [c for c in counted if c.kind != "token"]
        lost_sentences = sum(not c.ok for c in sentences) / max(1, len(sentences))
        supported = [c for c in checks if c.ok and c.kind == "claim"]
        action: Literal["ok", "repaired", "replace"] = "ok"
        if not supported or lost_words > LOST_SHARE or lost_sentences > LOST_SHARE:
            action = "replace"
        elif lost or any(c.recited is not None for c in checks):
            action = "repaired"
        text = _rebuild(answer, spans, checks, fixed)
        return Verdict(text, checks, sorted(bad_citations), bad_quotes, action,
                       round(lost_words, 4), round(lost_sentences, 4))


def _best(vectors: np.ndarray, vec: np.ndarray, passage_idx: list[list[int]],
          cited: Sequence[int]) -> tuple[float, int | None, int | None]:
    """The closest passage sentence: among the cited passages, else among all."""
    best, best_p, best_i = -1.0, None, None
    for only_cited in (True, False):
        for p, idx in enumerate(passage_idx, 1):
            if not idx or (only_cited and cited and p not in cited):
                continue
            sims = vectors[idx] @ vec
            j = int(np.argmax(sims))
            if float(sims[j]) > best:
                best, best_p, best_i = float(sims[j]), p, idx[j]
        if best_p is not None:
            break
    return best, best_p, best_i


def _numbers_in(text: str) -> set[str]:
    return {n.lower().strip() for n in _NUMBER.findall(text)}


def _labels(sentence: str, passage_text: str) -> list[str]:
    """Diagnoses, statistics and forecasts in a sentence that the passages never use."""
    found = [m.group(0).lower() for pattern in (_DIAGNOSIS, _STATISTIC, _PREDICTION)
             for m in pattern.finditer(sentence)]
    return [f for f in found if f.translate(_NORMALISE) not in passage_text]


def _recite(text: str, n: int) -> str:
    """The sentence with its [n] markers replaced by one marker for passage `n`."""
    bare = CITE_MARKER.sub("", text).rstrip()
    end = len(bare)
    while end and bare[end - 1] in ".!?…\"”’)*":
        end -= 1
    return f"{bare[:end]} [{n}]{bare[end:]}"


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
        # A removed sentence leaves a mark, so a line left with only marks goes too
        # (rather than leaving a gap in a list).
        out.append(fixed.get(k, answer[s:e]) if c.ok and c.kind != "empty" else "\x00")
        pos = e
    out.append(answer[pos:])
    text = _TEMPLATE_TOKEN.sub("", "".join(out))
    text = re.sub(r"^[ \t\x00]*\x00[ \t\x00]*(?:\n|$)", "", text, flags=re.MULTILINE)
    text = _renumber(text.replace("\x00", ""))
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    return text.strip()


def _renumber(text: str) -> str:
    """Number each list 1, 2, 3… again, and drop items left with nothing in them."""
    lines: list[str] = []
    expected = 0
    for line in text.splitlines():
        m = _LIST_ITEM.match(line)
        if m and not line[m.end():].strip(" *_"):
            continue  # an item whose text was removed
        if m:
            expected += 1
            line = f"{m.group(1)}{expected}{m.group(3)} {line[m.end():]}"
        elif line.strip():
            expected = 0
        lines.append(line)
    return "\n".join(lines)


__all__ = [
    "LOST_SHARE",
    "OVERLAP_MIN",
    "SUPPORT_MIN",
    "SUPPORT_STRONG",
    "SentenceCheck",
    "Verdict",
    "Verifier",
    "prompt_leaks",
    "shingles",
    "split_answer",
    "strip_citations",
]
