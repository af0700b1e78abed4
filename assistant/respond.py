"""The offline responder: a warm reply composed from the retrieved passages, in their words.

Nothing here is written for a particular question. Framing sentences come from
`data/replies.toml`, chosen by signals in the message; the substance is one to three
sentences quoted verbatim from the retrieved chunks (picked by similarity to the
question), each cited by section. Same input, same reply.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from .corpus import Article, Chunk, split_sentences

# Sentences that tell the reader what to do (or what helps) make better tips than scene
# setting; a small bonus on top of similarity prefers them when the two are close.
_ACTIONABLE = re.compile(
    r"^(try|ask|consider|break|imagine|brew|write|give|make|start|speak|spend|be|"
    r"don.t|supporting|owning|even|one small)\b|\b(can lead|can shift|can recapture|"
    r"can be the start|helps?|relieves|foster|try|consider|make that)\b",
    re.IGNORECASE,
)
ACTION_BONUS = 0.10
# A chosen sentence shorter than this is extended with the next one ("Break the ice.").
SHORT_QUOTE = 60
# Tip selection and coverage, on cosine similarity (MiniLM, normalised). Coverage "fit"
# is the best of the quoted sentences' and the passages' similarity. On the 34 advice
# questions of evals/data/answers.jsonl, the 29 the article covers fit from 0.353 up and
# the 5 it doesn't fit 0.319-0.389: no threshold separates them, so between COVER_MIN
# and COVER_FULL the reply says plainly the article doesn't speak to it directly and
# gives the closest tip (2 covered questions get that hedge; all 5 uncovered are told).
PASSAGE_SHARE = 0.5  # weight of the passage's similarity in a tip's fit
TIP_MARGIN = 0.10  # a further tip must score within this of the first
TIP_FLOOR = 0.22  # ... and at least this
COVER_MIN = 0.34  # best fit below this: the article doesn't cover the question
COVER_FULL = 0.40  # between the two: say so, and give the closest tip
CONTEXT_MIN = 0.45  # the introduction is quoted as context from this similarity

_CLOSERS = "\"”’)"
# A sentence that leans on the one before it ("When that occurs, ...") is quoted with it.
_LEANS_BACK = re.compile(r"^(when that|that|this|these|those|it|it’s not|such|then)\b", re.I)
_BRIDGE = frozenset("the a an of to in on for and or with our my your their like".split())
_LABEL_RE = re.compile(r"\*\(([^()]{2,40})\)\*")
_WORDS = re.compile(r"[A-Za-z0-9]+(?:[’'-][A-Za-z0-9]+)*")
# Words that say nothing about the topic of a question about one's relationship.
_GENERIC = frozenset(
    """partner husband wife boyfriend girlfriend spouse relationship relationships marriage
    married couple couples he she him her they them we us our my me i you your feel feeling
    felt want know think thing things way ways time times good best better make help people
    happy happier someone something anything everything lot much many keep go going day days
    week weeks year years tell say said ask try tried deal handle need should would could
    see sees seeing saw seen look looks looking get gets getting got come comes came give
    gives gave take takes took put let lets seem seems anymore lately always never maybe
    still ever even just every right""".split()
)


# ---------------------------------------------------------------- data


@cache
def load_replies() -> dict[str, Any]:
    """Read the framing templates shipped with the package."""
    with resources.files("assistant").joinpath("data/replies.toml").open("rb") as f:
        return tomllib.load(f)


def stable_pick(options: Sequence[str], key: str) -> str:
    """Choose one option by a hash of `key`: varied across messages, fixed for each."""
    if not options:
        return ""
    digest = hashlib.sha256(key.strip().lower().encode("utf-8")).digest()
    return options[int.from_bytes(digest[:4], "big") % len(options)]


def section_label(section_id: str, labels: dict[str, str] | None = None) -> str:
    """How a section is named in a citation: 'tip-4' -> 'tip 4', 'intro' -> 'introduction'."""
    labels = labels or load_replies()["labels"]
    m = re.fullmatch(r"tip-(\d+)", section_id)
    if m:
        return labels["tip"].format(n=m.group(1))
    return labels.get(section_id, section_id.replace("-", " "))


def short_title(title: str) -> str:
    """A section title without its countdown number: '4. Be honest' -> 'Be honest'."""
    return re.sub(r"^\d{1,2}\.\s+", "", title).strip()


# ---------------------------------------------------------------- sentences


@dataclass(frozen=True)
class Sentence:
    """One sentence of the corpus; `article.text[start:end] == text`."""

    article: str
    section_id: str
    section_title: str
    start: int
    end: int
    text: str
    actionable: bool


class SentenceBank:
    """Every sentence of the corpus, embedded once, for quoting and for verification."""

    def __init__(self, articles: Sequence[Article], embedder: Any) -> None:
        self.articles = list(articles)
        self._texts = {a.slug: a.text for a in self.articles}
        self.sentences: list[Sentence] = []
        for a in self.articles:
            for sec in a.sections:
                for s, e in split_sentences(a.text[sec.start : sec.end], sec.start):
                    # Keep a closing quotation mark with the sentence it closes.
                    while e < sec.end and a.text[e] in _CLOSERS:
                        e += 1
                    text = a.text[s:e]
                    self.sentences.append(
                        Sentence(a.slug, sec.section_id, sec.title, s, e, text,
                                 bool(_ACTIONABLE.search(text)))
                    )
        vecs = embedder.embed_documents([s.text for s in self.sentences])
        self.vectors = np.asarray(vecs, dtype=np.float32)
        self.sections = {
            sec.section_id: sec for a in self.articles for sec in a.sections
        }
        self.label_to_section = {section_label(sid): sid for sid in self.sections}
        self.titles = {sid: sec.title for sid, sec in self.sections.items()}
        self.words = [frozenset(content_words(s.text)) for s in self.sentences]
        self._vocab = set().union(*self.words)

    def similarities(self, vec: Sequence[float]) -> np.ndarray:
        """Cosine similarity of every sentence to an (L2-normalised) embedding."""
        return self.vectors @ np.asarray(vec, dtype=np.float32)

    def within(self, chunk: Chunk) -> list[int]:
        """Indices of the sentences inside a chunk."""
        return [
            i for i, s in enumerate(self.sentences)
            if s.article == chunk.article and s.start >= chunk.start and s.end <= chunk.end
        ]

    def in_section(self, section_id: str) -> list[int]:
        return [i for i, s in enumerate(self.sentences) if s.section_id == section_id]

    def span(self, i: int, j: int) -> str:
        """The verbatim corpus text from sentence i to sentence j (same section)."""
        a, b = self.sentences[i], self.sentences[j]
        return self._texts[a.article][a.start : b.end]

    def followup(self, message: str, history: Sequence[dict]) -> FollowUp:
        """Resolve a follow-up against this corpus's sections."""
        return resolve_followup(message, history, self.label_to_section, self.titles)

    def uncovered_words(self, text: str) -> list[str]:
        """Content words of `text` that the corpus never uses (by light stem)."""
        return [w for w in content_words(text) if w not in self._vocab]


def _stem(word: str) -> str:
    from .retrieval import stem

    return stem(word)


def content_words(text: str) -> list[str]:
    """Stemmed content words, without stop words or words any relationship question uses."""
    from .retrieval import _STOPWORDS

    out = []
    for w in _WORDS.findall(text.lower().replace("’", "'")):
        w = w.replace("'", "")
        if len(w) > 2 and w not in _STOPWORDS and w not in _GENERIC and not w.isdigit():
            out.append(_stem(w))
    return out


# ---------------------------------------------------------------- follow-ups


_ORDINALS = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3,
    "last": -1, "final": -1, "latter": -1, "former": 1,
}
_ORDINAL_REF = re.compile(
    r"\b(first|1st|second|2nd|third|3rd|last|final|latter|former)\b"
    r"(?:\s+(?:one|tip|idea|suggestion|thing|point|part)|\s+you\s+mentioned|\s+one)?",
    re.IGNORECASE,
)
_TIP_REF = re.compile(r"\b(?:tip|number|no\.?|#)\s*(\d{1,2})\b", re.IGNORECASE)
_FOLLOWUP_START = re.compile(
    r"^(and|but|so|ok(?:ay)?|then|what about|how about|what if|what else|tell me more|"
    r"more on|why|really|isn'?t|wouldn'?t|doesn'?t|is that|what would|how would)\b",
    re.IGNORECASE,
)
_ANAPHORA = re.compile(
    r"\b(that|this|it|those|these|them|then|one|there|else|instead|though|either)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class FollowUp:
    """How a message relates to the conversation before it."""

    query: str  # the text to retrieve with
    focus: tuple[str, ...] = ()  # sections the person pointed at ("the second one")
    is_followup: bool = False
    previous_sections: tuple[str, ...] = ()  # sections the last reply cited, in order
    previous_text: str = ""  # the last assistant reply, to avoid repeating its quotes


def cited_sections(text: str, label_to_section: dict[str, str]) -> list[str]:
    """Sections a reply cited, in order of first citation, from its '*(tip 4)*' labels."""
    out: list[str] = []
    for m in _LABEL_RE.finditer(text):
        sid = label_to_section.get(m.group(1).strip().lower())
        if sid and sid not in out:
            out.append(sid)
    return out


def resolve_followup(
    message: str,
    history: Sequence[dict],
    label_to_section: dict[str, str],
    titles: dict[str, str] | None = None,
) -> FollowUp:
    """Turn a follow-up into something retrievable, using the last turns of history.

    "what about the second one?" points at the second section the last reply cited;
    "tip 3" at tip-3; a short message leaning on "that/it/he says" borrows the previous
    question's words. A message that stands on its own is left as it is.
    """
    last_user = next((h["content"] for h in reversed(history) if h.get("role") == "user"), "")
    last_reply = next(
        (h["content"] for h in reversed(history) if h.get("role") == "assistant"), ""
    )
    prev_sections = tuple(cited_sections(last_reply, label_to_section))
    if not last_user and not last_reply:
        return FollowUp(message)

    focus: list[str] = []
    for m in _TIP_REF.finditer(message):
        sid = f"tip-{int(m.group(1))}"
        if sid in label_to_section.values() and sid not in focus:
            focus.append(sid)
    if not focus and prev_sections:
        m = _ORDINAL_REF.search(message)
        if m:
            n = _ORDINALS[m.group(1).lower()]
            tips = [s for s in prev_sections if s != "intro"] or list(prev_sections)
            if n == -1:
                focus.append(tips[-1])
            elif n <= len(tips):
                focus.append(tips[n - 1])

    words = _WORDS.findall(message)
    leans = bool(_FOLLOWUP_START.search(message.strip())) or (
        len(words) <= 12 and bool(_ANAPHORA.search(message))
    )
    is_followup = bool(focus) or leans
    if not is_followup:
        return FollowUp(message, (), False, prev_sections, last_reply)
    parts = [message]
    if focus:
        parts += [short_title((titles or {}).get(s, "")) for s in focus]
    if last_user and not focus:
        parts.append(last_user)
    return FollowUp(" ".join(p for p in parts if p), tuple(focus), True, prev_sections,
                    last_reply)


# ---------------------------------------------------------------- replies


@dataclass(frozen=True)
class Citation:
    """A section the reply draws on, with the verbatim words it quotes."""

    section_id: str
    section_title: str
    quote: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class Composed:
    """An offline reply before it is wrapped for the caller."""

    text: str
    citations: list[Citation] = field(default_factory=list)
    covered: bool = True
    best_similarity: float = 0.0
    focus: tuple[str, ...] = ()
    retrieved: list[str] = field(default_factory=list)  # sections of the passages used
    therapy_note: bool = False  # the reply says how to find a therapist


@dataclass
class _Pick:
    section_id: str
    title: str
    quote: str
    score: float
    first: int
    more: tuple[str, ...] = ()  # further quotes from the same section


class OfflineResponder:
    """Compose replies from passages; needs the sentence bank, nothing else at run time."""

    def __init__(self, bank: SentenceBank, replies: dict[str, Any] | None = None) -> None:
        self.bank = bank
        self.replies = replies or load_replies()
        self._signals = [
            (s["name"], re.compile(s["pattern"], re.IGNORECASE) if s["pattern"] else None,
             list(s["acknowledge"]))
            for s in self.replies["signals"]
        ]
        therapy_section = self.replies["therapy"].get("section", "tip-6")
        self.therapy_section = therapy_section if therapy_section in bank.sections else None
        self._probe_vec: np.ndarray | None = None
        self._embedder: Any = None

    def attach_embedder(self, embedder: Any) -> None:
        """Embed the therapy probe once, so therapy replies pick tip 6's own case quickly."""
        self._embedder = embedder
        self._probe_vec = np.asarray(
            embedder.embed_query(self.replies["therapy"]["probe"]), dtype=np.float32
        )

    # -- pieces

    def acknowledge(self, message: str, route: str, followup: bool = False) -> str:
        """The first sentence: reflects what the person said, by the first signal found."""
        text = message.lower()
        order = self._signals
        if route == "therapy":
            order = sorted(self._signals, key=lambda s: s[0] != "therapy")
        for name, pattern, templates in order:
            if followup and name in ("how_to", "default"):
                return stable_pick(self.replies["followup"]["acknowledge"], message)
            if pattern is None:
                return stable_pick(templates, message)
            m = pattern.search(text)
            if m:
                template = stable_pick(templates, message)
                return template.format(match=m.group(0).strip())
        return ""

    def _quote_from(self, idx: list[int], sims: np.ndarray, avoid: str) -> tuple[int, int, float]:
        """The best sentence among `idx` (extended if short), and its score."""
        best, best_score = -1, -9.0
        for i in idx:
            s = self.bank.sentences[i]
            if avoid and s.text in avoid:
                continue
            score = float(sims[i]) + (ACTION_BONUS if s.actionable else 0.0)
            if score > best_score:
                best, best_score = i, score
        if best < 0:
            return -1, -1, best_score
        end = best
        s = self.bank.sentences[best]
        prev = self.bank.sentences[best - 1] if best > 0 else None
        if (_LEANS_BACK.match(s.text) and prev is not None and prev.section_id == s.section_id
                and prev.article == s.article):
            return best - 1, best, best_score
        nxt = best + 1
        if (len(s.text) < SHORT_QUOTE or s.text.endswith(":")) and nxt < len(self.bank.sentences):
            n = self.bank.sentences[nxt]
            if n.section_id == s.section_id and n.article == s.article and not (
                avoid and n.text in avoid
            ):
                end = nxt
        return best, end, best_score

    def _picks(self, passages: Sequence[Any], sims: np.ndarray, avoid: str,
               exclude: set[str]) -> list[_Pick]:
        by_section: dict[str, list[int]] = {}
        passage_sim: dict[str, float] = {}
        for p in passages:
            sid = p.chunk.section_id
            if sid in exclude or sid == "intro":
                continue
            by_section.setdefault(sid, [])
            for i in self.bank.within(p.chunk):
                if i not in by_section[sid]:
                    by_section[sid].append(i)
            if p.similarity is not None:
                passage_sim[sid] = max(passage_sim.get(sid, -1.0), float(p.similarity))
        picks = []
        for sid, idx in by_section.items():
            i, j, score = self._quote_from(idx, sims, avoid)
            if i >= 0:
                # The passage's own similarity (lifted by its section's search keys) says
                # whether the section fits; the sentence's says which words to quote.
                fit = PASSAGE_SHARE * passage_sim.get(sid, score) + (1 - PASSAGE_SHARE) * score
                sec = self.bank.sections[sid]
                picks.append(_Pick(sid, sec.title, self.bank.span(i, j), fit, i))
        picks.sort(key=lambda p: (-p.score, p.first))
        return picks

    def _tip_line(self, pick: _Pick) -> str:
        quote = "\" … \"".join((pick.quote, *pick.more))
        return self.replies["tips"]["line"].format(
            title=short_title(pick.title), quote=quote, label=section_label(pick.section_id)
        )

    # -- the reply

    def compose(
        self,
        message: str,
        *,
        route: str,
        passages: Sequence[Any],
        query_vec: Sequence[float],
        followup: FollowUp | None = None,
        therapy_note: str | None = None,
        allowed: set[str] | None = None,
        opening: str = "",
        closing: str = "",
    ) -> Composed:
        """Compose the reply for an advice or therapy turn from the retrieved passages.

        `allowed` limits the sections that may be quoted (after an abuse disclosure);
        `opening` and `closing` are extra paragraphs (the safety lines that stay in view).
        """
        followup = followup or FollowUp(message)
        sims = self.bank.similarities(query_vec)
        avoid = followup.previous_text if followup.is_followup else ""
        exclude: set[str] = set()
        if allowed is not None:
            exclude |= set(self.bank.sections) - allowed
            passages = [p for p in passages if p.chunk.section_id in allowed]
            followup = FollowUp(followup.query, tuple(s for s in followup.focus if s in allowed),
                                followup.is_followup, followup.previous_sections,
                                followup.previous_text)
        if route == "therapy" and self.therapy_section:
            exclude.add(self.therapy_section)  # it gets its own block below
        composed = self._compose(message, route, passages, sims, followup, therapy_note,
                                 avoid, exclude)
        composed.retrieved = list(dict.fromkeys(p.chunk.section_id for p in passages))
        if route == "therapy" and self.therapy_section:
            # The therapy route brings in its section whether or not retrieval ranked it.
            composed.retrieved += [self.therapy_section] * (
                self.therapy_section not in composed.retrieved)
        # Compose is shared by concurrent sessions (one cached Assistant): no state on self.
        composed.text = "\n\n".join(
            p.strip() for p in (opening, composed.text, closing) if p and p.strip()
        )
        return composed

    def _compose(self, message: str, route: str, passages: Sequence[Any], sims: np.ndarray,
                 followup: FollowUp, therapy_note: str | None, avoid: str,
                 exclude: set[str]) -> Composed:
        r = self.replies

        retrieved_idx = sorted({i for p in passages for i in self.bank.within(p.chunk)})
        best_sim = max((float(sims[i]) for i in retrieved_idx), default=0.0)

        # A follow-up that points at a section gets more from that section.
        if followup.focus:
            return self._more_from(followup, sims, avoid, best_sim, therapy_note, route)

        picks = self._picks(passages, sims, avoid, exclude)
        # Coverage: the better of the best quoted sentence and the best passage (whose
        # similarity includes its section's search keys, written in everyday words).
        fit = max([best_sim] + [float(p.similarity) for p in passages if p.similarity is not None])
        coverage = "full" if fit >= COVER_FULL else "partial" if fit >= COVER_MIN else "none"
        if coverage == "partial" and not self.bank.uncovered_words(message):
            # Nothing the article lacks a word for ("she doesn't see me"): a weak match on
            # the same subject, not a different subject.
            coverage = "full"
        if route == "therapy":
            coverage = "full"  # the article's case for therapy answers a therapy turn

        paras: list[str] = []
        citations: list[Citation] = []
        ack = self.acknowledge(message, route, followup.is_followup)

        if coverage != "full" and "tip-1" in exclude and "tip-6" in exclude:
            # Sections held back after an abuse disclosure: no list of tips to offer.
            return Composed(self._join([r["sticky"]["abuse_question"]]), [], False, fit)
        if coverage != "full":
            topic = self._topic(message, self.bank.uncovered_words(message))
            close = picks[:1] if coverage == "partial" else []
            if close:
                paras.append(r["not_covered"]["partial"].format(topic=topic))
                paras.append(self._tip_line(close[0]))
                citations.append(self._cite(close[0]))
            else:
                paras.append(r["not_covered"]["plain"].format(topic=topic))
            paras.append(r["not_covered"]["offer"].format(sections=self._offer(exclude)))
            paras.append(r["not_covered"]["invite"])
            return Composed(self._join(paras), citations, False, fit)

        # Context from the introduction, when the person describes the drift it describes.
        context = ""
        intro = [i for p in passages[:2] if p.chunk.section_id == "intro"
                 for i in self.bank.within(p.chunk)]
        if intro and not followup.is_followup:
            i, j, score = self._quote_from(intro, sims, avoid)
            if i >= 0 and float(sims[i]) >= CONTEXT_MIN:
                quote = self.bank.span(i, j)
                context = r["tips"]["context"].format(quote=quote, label=section_label("intro"))
                citations.append(Citation("intro", self.bank.sections["intro"].title, quote))
        paras.append(" ".join(x for x in (ack, context) if x))

        chosen: list[_Pick] = []
        limit = 1 if route == "therapy" else 3  # therapy adds its own block below
        if route == "therapy" and self.therapy_section:
            # Another tip only when it fits about as well as the therapy section does.
            therapy_fit = [p.score for p in self._picks(passages, sims, avoid, set())
                           if p.section_id == self.therapy_section]
            if therapy_fit:
                picks = [p for p in picks if p.score >= therapy_fit[0] - TIP_MARGIN]
        for p in picks:
            if len(chosen) >= limit:
                break
            if not chosen or (p.score >= chosen[0].score - TIP_MARGIN and p.score >= TIP_FLOOR):
                chosen.append(p)
        if len(chosen) == 3 and chosen[2].score < chosen[0].score - TIP_MARGIN / 2:
            chosen = chosen[:2]
        if chosen:
            lead_key = {1: "one", 2: "two"}.get(len(chosen), "three")
            paras.append(r["tips"][lead_key])
            for p in chosen:
                paras.append(self._tip_line(p))
                citations.append(self._cite(p))

        first_section = chosen[0].section_id if chosen else None
        if route == "therapy" and self.therapy_section:
            block = self._therapy_block(sims, avoid)
            if block:
                paras.append(r["therapy"]["lead"])
                paras.append(self._tip_line(block))
                citations.append(self._cite(block))
                citations += [Citation(block.section_id, block.title, q) for q in block.more]
                first_section = block.section_id
        # How to find a therapist goes with the therapy route, and with any reply that
        # leads with the article's case for therapy.
        note_used = bool(therapy_note) and (route == "therapy" or (
            first_section is not None and first_section == self.therapy_section))
        if note_used:
            paras.append((therapy_note or "").strip())
        nexts = r["next_step"]
        paras.append(nexts.get(first_section or "", nexts["default"]))
        return Composed(self._join(paras), citations, True, fit, therapy_note=note_used)

    def _more_from(self, followup: FollowUp, sims: np.ndarray, avoid: str, best_sim: float,
                   therapy_note: str | None, route: str) -> Composed:
        r = self.replies
        paras, citations = [], []
        first = None
        for sid in followup.focus[:2]:
            idx = self.bank.in_section(sid)
            i, j, score = self._quote_from(idx, sims, avoid)
            if i < 0:  # every sentence was already quoted: quote the best one again
                i, j, score = self._quote_from(idx, sims, "")
            sec = self.bank.sections[sid]
            pick = _Pick(sid, sec.title, self.bank.span(i, j), score, i)
            paras.append(r["tips"]["more"].format(title=short_title(sec.title)))
            paras.append(f"\"{pick.quote}\" *({section_label(sid)})*")
            citations.append(self._cite(pick))
            first = first or sid
        note_used = bool(therapy_note) and first == self.therapy_section
        if note_used:
            paras.append((therapy_note or "").strip())
        nexts = r["next_step"]
        paras.append(nexts.get(first or "", nexts["default"]))
        return Composed(self._join(paras), citations, True, best_sim, followup.focus,
                        therapy_note=note_used)

    def _therapy_block(self, sims: np.ndarray, avoid: str) -> _Pick | None:
        idx = self.bank.in_section(self.therapy_section or "")
        if not idx:
            return None
        # Rank the therapy section's sentences by the article's case for therapy (the probe)
        # and by the person's question, so the quote is both the case and relevant to them.
        probe = (self.bank.vectors[idx] @ self._probe_vec) if self._probe_vec is not None else 0
        local = np.zeros_like(sims)
        local[idx] = sims[idx] + 0.5 * probe
        i, j, score = self._quote_from(idx, local, avoid)
        if i < 0:
            i, j, score = self._quote_from(idx, local, "")
        sec = self.bank.sections[self.therapy_section or ""]
        quotes = [self.bank.span(i, j)]
        # A second sentence of the case, so the reply gives the article's reasons, not
        # only its recommendation: the best remaining one by the same ranking.
        rest = [k for k in idx if not i <= k <= j and not (avoid and
                self.bank.sentences[k].text in avoid)]
        if rest:
            k = max(rest, key=lambda n: (float(local[n]), -n))
            quotes.append(self.bank.span(k, k))
            if k < i:
                quotes.reverse()
        return _Pick(sec.section_id, sec.title, quotes[0], score, i, tuple(quotes[1:]))

    def _cite(self, p: _Pick) -> Citation:
        return Citation(p.section_id, p.title, p.quote)

    def _topic(self, message: str, uncovered: list[str]) -> str:
        """The person's own words for what the article doesn't cover: the longest run."""
        missing = set(uncovered)
        runs: list[list[str]] = []
        run: list[str] = []
        bridge: list[str] = []  # small words between two missing words ("rock the boat")
        for w in _WORDS.findall(message):
            key = _stem(w.lower().replace("’", "'").replace("'", ""))
            if key in missing:
                run += bridge + [w]
                bridge = []
            elif run and w.lower() in _BRIDGE and len(bridge) < 2:
                bridge.append(w)
            else:
                if run:
                    runs.append(run)
                run, bridge = [], []
        if run:
            runs.append(run)
        if not runs:
            return self.replies["not_covered"]["topic_fallback"]
        best = max(runs, key=lambda r: (sum(_stem(x.lower()) in missing for x in r), len(r)))
        return "“" + " ".join(best) + "”"

    def _offer(self, exclude: set[str]) -> str:
        titles = [
            # Not in the *(label)* form: these are offers, not citations.
            f"{short_title(sec.title).lower()} ({section_label(sid)})"
            for sid, sec in self.bank.sections.items()
            if sid.startswith("tip-") and sid not in exclude
        ]
        return "; ".join(titles)

    def _join(self, paras: Iterable[str]) -> str:
        return "\n\n".join(p.strip() for p in paras if p and p.strip())


__all__ = [
    "Citation",
    "Composed",
    "FollowUp",
    "OfflineResponder",
    "SentenceBank",
    "cited_sections",
    "content_words",
    "load_replies",
    "resolve_followup",
    "section_label",
    "short_title",
    "stable_pick",
]
