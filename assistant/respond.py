"""The offline responder: a warm reply composed from the article, in its own words.

Framing sentences come from `data/replies.toml` (chosen by the turn's act, the themes of
the person's situation and signals in the message, never one an earlier reply used);
the substance is sentences quoted verbatim from the article, picked by their fit to the
question and to the situation (`data/themes.toml`), each cited by section. Same
conversation, same reply.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from .corpus import Article, Chunk, split_sentences
from .data import read_toml
from .dialogue import fill, greeting_back, is_question

if TYPE_CHECKING:
    from .dialogue import ConversationState

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
# A quote shorter than this carries no advice on its own ("Break the ice."): never alone.
MIN_QUOTE = 40
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
# The situation's themes (data/themes.toml) lift the sections and sentences written for
# them: enough to choose between sections that fit about equally, not to override a
# question that plainly asks about one section.
THEME_SECTION = 0.08
THEME_QUOTE = 0.25
AVOIDED = -5.0  # a sentence scored this low is a misfit for the situation: never quoted
# Tip 6 (hire a pro) is for distance that won't shift: below tips that fit as well unless
# the route or the situation's themes call for it.
THERAPY_TIP_PENALTY = 0.08
CITED_LAST = 0.05  # a tip the last reply quoted counts this much less on the next turn
# "I just want him to notice me": telling them what they need, not another gesture for them
RECEIVE_LIFT = {"tip-4": 0.06, "tip-2": -0.06}
TOPIC_MARGIN = 0.03  # "what does it say about X": a second tip only this close to the first
SENTENCE_LEAD = 0.10  # a subject's sentence this much closer overrides the search's first
# Someone worn out, carrying the effort alone or caring for someone: telling the partner
# honestly (tip 4) and support for themselves (tip 5) first; nothing that asks them to do
# more for the partner, nor a closer that does.
WORN_LIFT = {"tip-4": 0.08, "tip-5": 0.06, "tip-1": -0.06, "tip-2": -0.08, "tip-3": -0.08}
WORN_ASKS_MORE = frozenset({"tip-1", "tip-2", "tip-3", "conclusion"})
# Tip 5 (friends beyond the relationship) only as a further tip when the situation calls
# for it: their words about support, a theme that lists it, or being worn out.
_SUPPORT = re.compile(r"\b(friends?|support|lean(?:ing)? on|rely|depend\w*|alone|lonely|"
                      r"isolated|no one|nobody|community|everything for me|all my)\b", re.I)

_CLOSERS = "\"”’)"
# A question rather than a statement: "what fits A, B and C", "any advice for ...?"
_ASKS = re.compile(r"\?|^(what|how|which|any|can|could|should|is|are|do|does)\b|\bfits?\b|"
                   r"\b(advice|tips?|ideas?) for\b", re.IGNORECASE)
# "So what can I do?": asks for advice without naming a new subject; the article answers it.
_WHAT_TO_DO = re.compile(
    r"^\W*((so|and|but|ok(ay)?|then|well|right)[\s,]+)*(what|how) (can|could|should|do|would|"
    r"might|else can) (i|we) (even |actually |possibly |still |really )?(do|try|change|fix|"
    r"work on|start)\b", re.IGNORECASE)
# The parts of "what does it say about X and Y" / "X, Y or Z".
_PART_SPLIT = re.compile(r",|;|/|&|\band\b|\bor\b|\bplus\b|\bas well as\b", re.IGNORECASE)
# A sentence that leans on the one before it ("When that occurs, ...") is quoted with it.
_LEANS_BACK = re.compile(
    r"^(when that|that|this|these|those|it|it’s not|such|then|but|and|so|also)\b", re.I)
_LABEL_RE = re.compile(r"\*\(([^()]{2,40})\)\*")
_WORDS = re.compile(r"[A-Za-z0-9]+(?:[’'-][A-Za-z0-9]+)*")
# "Give me one thing": one tip, not three.
_JUST_ONE = re.compile(r"\b(one|1|a single|just one|single) (thing|tip|idea|suggestion|step|"
                       r"piece of advice)\b|\bone thing\b", re.IGNORECASE)
# A first message that says nothing yet: "idk", "hmm", "not sure", "help".
_VAGUE_WORDS = (r"(idk|i don'?t know|dunno|not sure|i'?m not sure|no idea|hmm+|um+|uh+|help|"
                r"ok(ay)?|yes|no|maybe|well|so|nothing|i guess|where do i start|where to start|"
                r"hard to say|it'?s complicated|i can'?t explain|really|then|me|please|tbh|lol|"
                r"honestly|just|idek|i dunno)")
_VAGUE = re.compile(rf"^\W*{_VAGUE_WORDS}([\s,.!?]+{_VAGUE_WORDS})*\W*$", re.IGNORECASE)
# A statement about their life (not a question): the article almost always has something.
_STATEMENT_FLOOR = 0.22
LONG_MESSAGE = 16  # words: past this they told a lot, so no "tell me a little more"
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
    return read_toml("replies.toml")


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
    from .retrieval import STOPWORDS

    out = []
    for w in _WORDS.findall(text.lower().replace("’", "'")):
        w = w.replace("'", "")
        if len(w) > 2 and w not in STOPWORDS and w not in _GENERIC and not w.isdigit():
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
    for ref in _TIP_REF.finditer(message):
        sid = f"tip-{int(ref.group(1))}"
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
    therapy_note: bool = False  # the reply lists the therapist directories


@dataclass
class Pick:
    """A section chosen for a reply, with the verbatim words to quote from it."""

    section_id: str
    title: str
    quote: str
    score: float
    first: int
    more: tuple[str, ...] = ()  # further quotes from the same section

    def quotes(self) -> tuple[str, ...]:
        return (self.quote, *self.more)


@dataclass(frozen=True)
class Limits:
    """What a reply may draw on: sections allowed, and what to put around it."""

    allowed: frozenset[str] | None = None  # None: every section
    abuse: bool = False  # the conversation disclosed abuse (the policy holds tips back)
    therapy_note: str | None = None  # the directory, shown once per conversation
    opening: str = ""
    closing: str = ""

    def ok(self, section_id: str) -> bool:
        return self.allowed is None or section_id in self.allowed

    def without(self, rejected: Iterable[str], sections: Iterable[str]) -> Limits:
        """These limits less the sections the person ruled out ("he already has friends")."""
        drop = set(rejected)
        if not drop:
            return self
        base = set(sections) if self.allowed is None else set(self.allowed)
        return replace(self, allowed=frozenset(base - drop))


def join(paras: Iterable[str]) -> str:
    """Paragraphs joined by blank lines, empty ones dropped."""
    return "\n\n".join(p.strip() for p in paras if p and p.strip())


def frame(composed: Composed, limits: Limits) -> Composed:
    """Put the policy's opening and closing paragraphs around a reply."""
    composed.text = join((limits.opening, composed.text, limits.closing))
    return composed


class OfflineResponder:
    """Compose replies from passages; needs the sentence bank, nothing else at run time."""

    def __init__(self, bank: SentenceBank, replies: dict[str, Any] | None = None,
                 probe_vec: Sequence[float] | None = None) -> None:
        self.bank = bank
        self.replies = replies or load_replies()
        self._signals = [
            (s["name"], re.compile(s["pattern"], re.IGNORECASE) if s["pattern"] else None,
             list(s["acknowledge"]))
            for s in self.replies["signals"]
        ]
        therapy_section = self.replies["therapy"].get("section", "tip-6")
        self.therapy_section = therapy_section if therapy_section in bank.sections else None
        # The article's case for therapy, embedded once by the caller: ranks tip 6's sentences.
        self._probe_vec = None if probe_vec is None else np.asarray(probe_vec, np.float32)
        self.tips = [s for s in bank.sections if s.startswith("tip-")]  # reading order
        self._therapy_call = re.compile(self.replies["therapy"]["calls_for"], re.IGNORECASE)
        self._questions = [(re.compile(q["pattern"], re.IGNORECASE), q)
                           for q in self.replies.get("questions", [])]
        self._sentence_at = {s.text: i for i, s in enumerate(bank.sentences)}
        self._feelings = [(f["name"], re.compile(f["pattern"], re.IGNORECASE),
                           list(f["acknowledge"])) for f in self.replies.get("feelings", [])]
        self._details = [(re.compile(d["pattern"], re.IGNORECASE),
                          re.compile(d["unless"], re.IGNORECASE) if d.get("unless") else None,
                          list(d["lines"])) for d in self.replies.get("details", [])]

    # -- pieces other replies share

    def acknowledge(self, message: str, route: str, state: ConversationState) -> str:
        """The first sentences: what they pushed back on, the theme of their situation (else
        a signal in their words), and the feeling they named."""
        feeling = self.feeling(message, state)
        push = self.pushback_line(message, state)
        if push:
            return " ".join(x for x in (push, feeling) if x)
        ack = self._situation_ack(message, route, state, bool(feeling))
        detail = self.detail(message, state)
        if ack and detail:
            feeling = ""  # two sentences of comfort are enough; the concrete one stays
        hello = greeting_back(message) if not state.turns else ""  # "hi!! so..." gets a hi
        return " ".join(x for x in (hello, ack, feeling, detail) if x)

    def detail(self, message: str, state: ConversationState) -> str:
        """A sentence reflecting one concrete detail they gave (a son, going to bed alone,
        counselling already tried), if a written line fits and no earlier reply used it."""
        for rx, unless, lines in self._details:
            m = rx.search(message)
            if m and not (unless and unless.search(message)):
                said = re.sub(r"^(?i:my|our)\b", "your", m.group(0))
                options = [fill(o, state.words).replace("{match}", said) for o in lines]
                line = state.fresh(options, message)
                return "" if state.used(line) else line
        return ""

    def feeling(self, message: str, state: ConversationState) -> str:
        """A sentence for the feeling they named (guilt, resentment, numbness...), if any."""
        for name, rx, lines in self._feelings:
            if name == "worn" and any(t.worn and t.name == "one_sided"
                                      for t in state.current_themes):
                continue  # its own line already says how wearing it is
            if rx.search(message):
                options = [fill(o, state.words) for o in lines]
                line = state.fresh(options, message)
                return "" if state.used(line) else line
        return ""

    def pushback_line(self, message: str, state: ConversationState) -> str:
        """A sentence taking in what they just ruled out, so the reply moves on from it."""
        lines = self.replies.get("pushback", {}).get(state.pushback, [])
        if not lines:
            return ""
        return state.fresh([fill(o, state.words) for o in lines], message)

    def _situation_ack(self, message: str, route: str, state: ConversationState,
                       has_feeling: bool) -> str:
        for theme in state.current_themes:
            ack = state.fresh(theme.acknowledge, message)
            if not state.used(ack):
                return ack
        if has_feeling:
            return ""  # the feeling they named says it better than a generic line
        # a generic line only for the first thing they tell (a greeting before it counts not)
        generic_ok = not is_question(message) and len(state.situation_texts) <= 1
        order = self._signals
        if route == "therapy":
            order = sorted(self._signals, key=lambda s: s[0] not in ("therapy", "asks_therapy"))
        for _name, pattern, templates in order:
            m = pattern.search(message.lower()) if pattern is not None else None
            if pattern is None and not generic_ok:
                continue  # "thank you for telling me" to "so what do I do" reads as a form
            if pattern is None or m:
                options = [t.replace("{match}", m.group(0).strip()) if m else t
                           for t in templates]
                ack = state.fresh(options, message)
                if not state.used(ack):
                    return ack
        return ""

    def closer(self, first: Pick | None, state: ConversationState, key: str,
               tips: int = 1) -> str:
        """A gentle next step that fits the quote right before it (`first`: the reply's
        last pick); never one used before."""
        nexts = self.replies["next_step"]
        sid = first.section_id if first else "default"
        if sid == "tip-4" and first and "Even saying" in " ".join(first.quotes()):
            sid = "tip-4-sayable"  # only then is there something to "say like that"
        if state.worn and sid in WORN_ASKS_MORE:
            sid = "worn"  # worn out or carrying it alone: nothing more to do for them
        def unused(options: Sequence[str]) -> list[str]:
            return [o for o in options if not state.used(fill(o, state.words))
                    and state.closer_fits(o)]

        # "Which of these" needs more than one tip to choose from.
        general = nexts["default"] if tips > 1 else nexts["single"]
        # Never a closer an earlier reply ended on: the section's, the general ones, then
        # a plain invitation that asks nothing.
        options = unused(nexts.get(sid, [])) or unused(general) or unused(nexts["open"]) \
            or nexts["open"]
        return state.fresh(options, key)

    def closing_pick(self, picks: Sequence[Pick], state: ConversationState,
                     directory_here: bool = False) -> Pick | None:
        """The pick the closing question follows: the last, unless that is tip 6 with no
        directory shown yet (its "first session" question presumes one): the one before."""
        last = picks[-1] if picks else None
        if last is not None and len(picks) > 1 and last.section_id == self.therapy_section \
                and not (directory_here or state.directory_shown):
            return picks[-2]
        return last

    def tip_line(self, pick: Pick) -> str:
        """A tip as shown: its title in bold, the quote, the citation."""
        return self.replies["tips"]["line"].format(
            title=short_title(pick.title), quote="\" … \"".join(pick.quotes()),
            label=section_label(pick.section_id))

    def citations(self, picks: Iterable[Pick]) -> list[Citation]:
        """A citation for every quote of every pick."""
        return [Citation(p.section_id, p.title, q) for p in picks for q in p.quotes()]

    def offer(self, limits: Limits) -> str:
        """The tips the article has, as an offer (not in the citation form)."""
        return "; ".join(
            f"{short_title(self.bank.titles[sid]).lower()} ({section_label(sid)})"
            for sid in self.tips if limits.ok(sid)
        )

    def quote_span(self, idx: Sequence[int], scores: np.ndarray, avoid: str,
                   taken: frozenset[int] = frozenset()) -> tuple[int, int, float]:
        """The best sentence among `idx`, widened so it never starts or stops mid-thought."""
        ranked: list[tuple[float, int]] = []
        for i in idx:
            s = self.bank.sentences[i]
            if (avoid and s.text in avoid) or scores[i] <= AVOIDED:
                continue
            ranked.append((float(scores[i]) + (ACTION_BONUS if s.actionable else 0.0), i))
        ranked.sort(key=lambda x: (-x[0], x[1]))
        for score, best in ranked:
            i, j = self._widen(best, avoid)
            if taken.intersection(range(i, j + 1)):
                continue  # overlaps a quote already in this reply
            if len(self.span(i, j)) >= MIN_QUOTE:  # "Break the ice." alone says nothing
                return i, j, score
        return -1, -1, -9.0

    def span(self, i: int, j: int) -> str:
        return self.bank.span(i, j)

    def _widen(self, best: int, avoid: str) -> tuple[int, int]:
        """Lean-back sentences take the one before; short ones the one after."""
        sents = self.bank.sentences
        s = sents[best]
        same = self._same_section
        if _LEANS_BACK.match(s.text) and best > 0 and same(best - 1, best):
            return best - 1, best
        nxt = best + 1
        if (len(s.text) < SHORT_QUOTE or s.text.endswith(":")) and nxt < len(sents) \
                and same(best, nxt) and not (avoid and sents[nxt].text in avoid):
            return best, nxt
        return best, best

    def _same_section(self, i: int, j: int) -> bool:
        a, b = self.bank.sentences[i], self.bank.sentences[j]
        return a.section_id == b.section_id and a.article == b.article

    def section_pick(self, sid: str, scores: np.ndarray, state: ConversationState,
                     n: int = 1, allow_repeat: bool = False) -> Pick | None:
        """Up to `n` quotes from one section, fitted to the situation's themes."""
        idx = self.bank.in_section(sid)
        local = self._theme_scores(idx, scores, state)
        spans: list[tuple[int, int]] = []
        avoid = state.earlier_replies
        for _ in range(n):
            taken = "\n".join(self.bank.span(i, j) for i, j in spans)
            used = frozenset(k for a, b in spans for k in range(a, b + 1))
            i, j, _score = self.quote_span(idx, local, avoid + "\n" + taken, used)
            if i < 0:
                break
            spans.append((i, j))
        if not spans and allow_repeat:
            i, j, _score = self.quote_span(idx, local, "")
            spans = [(i, j)] if i >= 0 else []
        if not spans:
            return None
        spans.sort()
        quotes = [self.bank.span(i, j) for i, j in spans]
        sec = self.bank.sections[sid]
        return Pick(sid, sec.title, quotes[0], float(local[spans[0][0]]), spans[0][0],
                    tuple(quotes[1:]))

    def _theme_scores(self, idx: Sequence[int], scores: np.ndarray, state: ConversationState
                      ) -> np.ndarray:
        """Sentence scores lifted for the themes' chosen quotes, sunk for their misfits."""
        local = np.full_like(scores, -9.0)
        local[list(idx)] = scores[list(idx)]
        problem_only = self.replies["tips"].get("problem_only", [])
        for i in idx:  # what they pushed back on ("why should I make the first move")
            text = self.bank.sentences[i].text
            if any(p in text for p in state.avoid_phrases) or text in problem_only:
                local[i] = AVOIDED  # the problem stated is not advice
        for rank, theme in enumerate(reversed(state.themes)):  # the latest theme counts most
            weight = THEME_QUOTE if rank == 0 else THEME_QUOTE / 2
            for i in idx:
                text = self.bank.sentences[i].text
                if text in theme.quotes:
                    local[i] += weight
                elif text in theme.avoid:
                    local[i] = AVOIDED  # a misfit for this situation: never quoted
        return local

    def section_bonus(self, sid: str, state: ConversationState) -> float:
        """How much the situation's themes favour a section (this message's the most)."""
        bonus = 0.0
        for theme in state.themes:
            if sid in theme.sections:
                rank = theme.sections.index(sid)
                weight = THEME_SECTION if theme in state.current_themes else THEME_SECTION / 2
                bonus = max(bonus, weight * (1.0 - 0.25 * rank))
        if state.worn:
            bonus += WORN_LIFT.get(sid, 0.0)
        if sid in state.last_cited:
            bonus -= CITED_LAST  # the tip the last reply gave: something new, if as good
        if state.wants_to_receive:
            bonus += RECEIVE_LIFT.get(sid, 0.0)
        return bonus

    # -- a situation (or a question about a topic), from the retrieved passages

    def compose(
        self,
        message: str,
        *,
        route: str,
        passages: Sequence[Any],
        query_vec: Sequence[float],
        state: ConversationState | None = None,
        limits: Limits | None = None,
        topic: bool = False,
    ) -> Composed:
        """Compose the reply to the person's situation from the retrieved passages.

        `topic` is a question about what the article says ("what does it say about X"):
        no acknowledgement, just what it says or that it doesn't.
        """
        from .dialogue import ConversationState, themes_in

        state = state or ConversationState(current_themes=themes_in(message),
                                           themes=themes_in(message))
        limits = limits or Limits()
        asked = limits  # a direct question ("what would I say") names what it wants
        if not topic:  # a question about the article gets its answer, whatever they ruled out
            limits = limits.without(state.rejected, self.bank.sections)
        if not topic and not state.turns and _VAGUE.match(message):
            # "idk" as a first message answers nothing: invite them to say what's going on.
            invite = [fill(o, state.words) for o in self.replies["acts"]["vague_first"]]
            return frame(Composed(state.fresh(invite, message)), limits)
        passages = [p for p in passages if limits.ok(p.chunk.section_id)]
        sims = self.bank.similarities(query_vec)
        fit = self._fit(passages, sims)
        coverage = self._coverage(message, route, fit, state)
        question = None if topic else self.direct_question(message)
        parts = self._topic_parts(message, sims, limits) if topic else []
        if question is not None:
            composed = self._answer_question(message, question, route, sims, state, asked,
                                             fit)
        elif len(parts) >= 2:
            composed = self._parts_reply(message, parts, state, fit)
        elif not topic and len(state.current_themes) >= 2 and _ASKS.search(message):
            composed = self._themes_reply(message, route, sims, state, limits, fit)
        elif coverage != "full":
            composed = self._not_covered(message, coverage, passages, sims, state, limits,
                                         fit, topic)
        else:
            composed = self._covered(message, route, passages, sims, state, limits, fit,
                                     topic)
        composed.retrieved = list(dict.fromkeys(p.chunk.section_id for p in passages))
        if route == "therapy" and self.therapy_section and limits.ok(self.therapy_section):
            # The therapy route brings in its section whether or not retrieval ranked it.
            composed.retrieved += [self.therapy_section] * (
                self.therapy_section not in composed.retrieved)
        # One responder serves concurrent sessions (a cached Assistant): no state on self.
        return frame(composed, limits)

    # -- a direct question, or a question with several parts

    def direct_question(self, message: str) -> dict[str, Any] | None:
        """The written honest answer for a direct question ('is it my fault?'), if any."""
        return next((q for rx, q in self._questions if rx.search(message)), None)

    def _answer_question(self, message: str, question: dict[str, Any], route: str,
                         sims: np.ndarray, state: ConversationState, limits: Limits,
                         fit: float) -> Composed:
        """Answer what was asked: what the article can and cannot say, then its words."""
        head = self.acknowledge(message, route, state) if state.current_themes else ""
        answer = question["answer"]
        paras = [head, state.fresh(answer, message) if isinstance(answer, list)
                 else fill(answer, state.words)]
        picks: list[Pick] = []
        prefer = question.get("prefer", "")
        for n, sid in enumerate(question["sections"]):
            if not limits.ok(sid) or sid not in self.bank.sections:
                continue
            first_words = prefer[n] if isinstance(prefer, list) and n < len(prefer) else \
                prefer if isinstance(prefer, str) else ""
            pick = self._preferred_pick(sid, first_words, state) or \
                self.section_pick(sid, sims, state)
            if pick is not None:
                picks.append(pick)
            if len(picks) >= int(question.get("picks", 1)):
                break
        for p in picks:
            if p.section_id.startswith("tip-"):
                paras.append(self.tip_line(p))
            else:  # the introduction or conclusion is not a tip
                led_in = paras[-1].rstrip().endswith(":")
                paras.append(self.replies["tips"]["context_bare" if led_in else "context"].format(
                    quote="\" … \"".join(p.quotes()), label=section_label(p.section_id)))
        therapy = self._therapy_paras(route, sims, state, limits, picks, message)
        paras += therapy.paras
        close = [fill(c, state.words) for c in question.get("close", [])]
        close = [c for c in close if not state.used(c)]
        paras.append(state.fresh(close, message) if close else
                     self.closer(picks[-1] if picks else None, state, message))
        all_picks = [*picks, *([therapy.pick] if therapy.pick else [])]
        return Composed(join(paras), self.citations(all_picks), True, fit,
                        therapy_note=therapy.note_used)

    def _preferred_pick(self, sid: str, prefer: str, state: ConversationState) -> Pick | None:
        """The section's sentence starting with `prefer` (widened as usual), if not quoted."""
        if not prefer:
            return None
        i = next((i for i in self.bank.in_section(sid)
                  if self.bank.sentences[i].text.startswith(prefer)), None)
        if i is None:
            return None
        i, j = self._widen(i, "")
        quote = self.bank.span(i, j)
        if state.used(quote):
            return None
        return Pick(sid, self.bank.titles[sid], quote, 1.0, i)

    def _theme_pick(self, theme: Any, state: ConversationState, limits: Limits,
                    taken: set[str]) -> Pick | None:
        """The theme's own best-fitting sentence from a section not used yet in this reply."""
        avoid = {a for t in state.current_themes for a in t.avoid}
        indexed = [(q, self._sentence_at.get(q)) for q in theme.quotes]
        # Sentences that say what to do first: a part of a question wants something to try.
        indexed.sort(key=lambda qi: qi[1] is None or not self.bank.sentences[qi[1]].actionable)
        for quote, i in indexed:
            if i is None or quote in avoid or state.used(quote):
                continue
            sid = self.bank.sentences[i].section_id
            if sid in taken or not limits.ok(sid):
                continue
            return Pick(sid, self.bank.titles[sid], quote, 1.0, i)
        return None

    def _themes_reply(self, message: str, route: str, sims: np.ndarray,
                      state: ConversationState, limits: Limits, fit: float) -> Composed:
        """'What fits A, B and C': something for each part, or say the article lacks it."""
        r = self.replies["parts"]
        themes = state.current_themes[:3]
        labels = [t.label for t in themes]
        named = ", ".join(labels[:-1]) + f" and {labels[-1]}"
        paras = [r["lead"].format(parts=named)]
        picks: list[Pick] = []
        taken: set[str] = set()
        for theme in themes:
            part = theme.label[:1].upper() + theme.label[1:]
            pick = self._theme_pick(theme, state, limits, taken) if theme.covered else None
            if pick is None:
                coverage = fill(theme.coverage, state.words) or r["none"]
                paras.append(r["missing"].format(part=part,
                                                 coverage=coverage[:1].lower() + coverage[1:]))
                continue
            taken.add(pick.section_id)
            picks.append(pick)
            paras.append(r["line"].format(part=part, title=short_title(pick.title),
                                          quote=pick.quote,
                                          label=section_label(pick.section_id)))
        therapy = self._therapy_paras(route, sims, state, limits, picks, message)
        paras += therapy.paras
        paras.append(self.closer(picks[-1] if picks else None, state, message, len(picks)))
        all_picks = [*picks, *([therapy.pick] if therapy.pick else [])]
        return Composed(join(paras), self.citations(all_picks), True, fit,
                        therapy_note=therapy.note_used)

    def _topic_parts(self, message: str, sims: np.ndarray, limits: Limits
                     ) -> list[tuple[str, Pick | None]]:
        """'What does it say about X and Y': each part with the sentence that speaks to it."""
        from .dialogue import topic_of

        raw = [p for p in _PART_SPLIT.split(topic_of(message)) if p and p.strip()]
        parts = [p.strip() for p in raw if content_words(p)]
        if len(parts) < 2:
            return []
        out: list[tuple[str, Pick | None]] = []
        taken: set[str] = set()
        for part in parts[:3]:
            words = set(content_words(part))
            best, best_key = -1, (0, -9.0)
            for i, sent in enumerate(self.bank.sentences):
                sid = sent.section_id
                if sid in taken or not limits.ok(sid) or not sid.startswith("tip-"):
                    continue
                title = set(content_words(self.bank.titles[sid]))
                key = (len(words & (self.bank.words[i] | title)), float(sims[i]))
                if key[0] and key > best_key:
                    best, best_key = i, key
            if best < 0:
                out.append((part, None))
                continue
            sid = self.bank.sentences[best].section_id
            taken.add(sid)
            i, j = self._widen(best, "")
            out.append((part, Pick(sid, self.bank.titles[sid], self.bank.span(i, j),
                                   best_key[1], i)))
        return out if sum(p is not None for _, p in out) >= 1 else []

    def _parts_reply(self, message: str, parts: list[tuple[str, Pick | None]],
                     state: ConversationState, fit: float) -> Composed:
        """Each part of a question about the article, in its words, or that it is missing."""
        r = self.replies["parts"]
        paras = [state.fresh(self.replies["acts"]["topic_lead"], message)]
        picks = [p for _, p in parts if p is not None]
        paras += [self.tip_line(p) for p in picks]
        if any(p is None for _, p in parts):
            paras.append(r["topic_missing"])
        paras.append(self.closer(picks[-1] if picks else None, state, message, len(picks)))
        return Composed(join(paras), self.citations(picks), True, fit)

    def _fit(self, passages: Sequence[Any], sims: np.ndarray) -> float:
        """How well the article fits: the best quoted sentence or passage similarity."""
        idx = sorted({i for p in passages for i in self.bank.within(p.chunk)})
        best = max((float(sims[i]) for i in idx), default=0.0)
        return max([best] + [float(p.similarity) for p in passages if p.similarity is not None])

    def _coverage(self, message: str, route: str, fit: float, state: ConversationState) -> str:
        """'full', 'partial' or 'none': how much the article speaks to this message."""
        if _WHAT_TO_DO.search(message) and len(content_words(message)) <= 2 \
                and not self.bank.uncovered_words(message):
            return "full"  # "what can I do (on my own)": the tips are the answer
        if any(not t.covered for t in state.current_themes):
            return "partial" if fit >= COVER_MIN else "none"
        if route == "therapy" or state.current_themes:
            return "full"  # tip 6's case answers therapy; a theme names what fits
        if not _ASKS.search(message) and fit >= _STATEMENT_FLOOR:
            # They told something about their life ("he's started staying late too"): the
            # article is about exactly that kind of drift; say what fits, not "no".
            return "full"
        if fit >= COVER_FULL:
            return "full"
        if fit >= COVER_MIN:
            # Nothing the article lacks a word for ("she doesn't see me"): a weak match on
            # the same subject, not a different subject.
            return "full" if not self.bank.uncovered_words(message) else "partial"
        return "none"

    def _not_covered(self, message: str, coverage: str, passages: Sequence[Any],
                     sims: np.ndarray, state: ConversationState, limits: Limits, fit: float,
                     topic: bool) -> Composed:
        """Say plainly the article doesn't speak to it (never echoing their words)."""
        r = self.replies
        if limits.abuse and not passages:
            return Composed(r["sticky"]["abuse_question"], [], False, fit)
        theme = next((t for t in state.current_themes if t.coverage), None)
        paras = [self.acknowledge(message, "advice", state) if theme and not topic else ""]
        if theme:
            paras.append(self.coverage_line(theme, state, message))
        picks = self.choose(passages, sims, state, limits, "advice")[:1]
        # "tell me a little more" only after a short first message: after they told a lot,
        # or on a later turn, it reads as not listening
        told_a_lot = len(_WORDS.findall(message)) > LONG_MESSAGE or state.turns > 0
        if coverage == "partial" and picks:
            paras.append(r["not_covered"]["partial_theme" if theme else "partial"])
            paras.append(self.tip_line(picks[0]))
            paras.append(self.closer(picks[0], state, message) if told_a_lot or theme
                         else r["not_covered"]["invite_one"])
        else:
            picks = []
            if not theme:
                paras.append(r["not_covered"]["plain"])
            paras.append(r["not_covered"]["about"])
            paras.append(r["not_covered"]["invite"])
        return Composed(join(paras), self.citations(picks), False, fit)

    @staticmethod
    def coverage_line(theme: Any, state: ConversationState, message: str) -> str:
        """What the article does and doesn't say for a theme: once per conversation (any
        of its wordings), never again on later turns."""
        options = [fill(c, state.words) for c in (theme.coverages or (theme.coverage,)) if c]
        if not options or any(state.used(o) for o in options):
            return ""
        return state.fresh(options, message)

    def _covered(self, message: str, route: str, passages: Sequence[Any], sims: np.ndarray,
                 state: ConversationState, limits: Limits, fit: float, topic: bool
                 ) -> Composed:
        """Acknowledge, say what the article offers for the theme, quote, close."""
        r = self.replies
        chosen = self.choose(passages, sims, state, limits, route, by_rank=topic,
                             message=message)
        head = state.fresh(r["acts"]["topic_lead"], message) if topic and chosen else \
            "" if topic else self.acknowledge(message, route, state)
        theme = next((t for t in state.current_themes if t.coverage), None)
        coverage = self.coverage_line(theme, state, message) if theme else ""
        context, context_cites = self._context(passages, sims, state, topic)
        paras = [" ".join(x for x in (head, context) if x)]
        paras.append(coverage)
        if chosen:
            if not topic and not coverage:
                # The coverage line already leads into the quotes: one framing line, not two.
                key = {1: "one", 2: "two"}.get(len(chosen), "three")
                paras.append(state.fresh(r["tips"][key], message))
            paras += [self.tip_line(p) for p in chosen]
        therapy = self._therapy_paras(route, sims, state, limits, chosen, message)
        paras += therapy.paras
        # the closer follows the therapy quote, unless only the offer of directories came
        # with it: then "what you'd want from a first session" presumes too much
        picks = [*chosen, *([therapy.pick] if therapy.pick else [])]
        # an offer of directories last: a closer that refers to neither it nor the tip before
        first = None if therapy.offered else self.closing_pick(picks, state, therapy.note_used)
        paras.append(self.closer(first, state, message, len(picks)))
        return Composed(join(paras), context_cites + self.citations(picks), True, fit,
                        therapy_note=therapy.note_used)

    def _context(self, passages: Sequence[Any], sims: np.ndarray, state: ConversationState,
                 topic: bool) -> tuple[str, list[Citation]]:
        """The introduction's words, when the person describes the drift it describes."""
        # a question about a subject: the introduction only when the search puts it first
        reach = passages[:1] if topic else passages[:2]
        intro = [i for p in reach if p.chunk.section_id == "intro"
                 for i in self.bank.within(p.chunk)]
        if not intro or state.turns and not topic:
            return "", []
        i, j, _ = self.quote_span(intro, sims, state.earlier_replies)
        if i < 0 or float(sims[i]) < CONTEXT_MIN:
            return "", []
        quote = self.bank.span(i, j)
        text = self.replies["tips"]["context"].format(quote=quote, label=section_label("intro"))
        return text, [Citation("intro", self.bank.titles["intro"], quote)]

    def choose(self, passages: Sequence[Any], sims: np.ndarray, state: ConversationState,
               limits: Limits, route: str, by_rank: bool = False, message: str = ""
               ) -> list[Pick]:
        """The tips to quote: best fit to the question and the situation, none repeated.

        `by_rank` leads with the search's first section: a question about what the article
        says names its subject, and the search finds it better than sentence similarity.
        """
        picks = self._candidates(passages, sims, state, limits, route)
        rank = {sid: n for n, sid in enumerate(dict.fromkeys(p.chunk.section_id
                                                             for p in passages))}
        search_lead = next(iter(rank), None)
        if by_rank and picks:
            lead = min(picks, key=lambda p: rank.get(p.section_id, 99))
            # ...unless one section's own sentence answers the subject far better ("making
            # him coffee": tip 2's coffee, though the search ranks time together first)
            def closest(p: Pick) -> float:
                return max(float(sims[i]) for i in self.bank.in_section(p.section_id))

            best = max(picks, key=closest)
            if closest(best) >= closest(lead) + SENTENCE_LEAD:
                lead = best
                rank = {best.section_id: -1, **rank}
            picks = [lead] + [p for p in picks if p is not lead]
            lead.score = max(p.score for p in picks)
        # Therapy adds its own block; "give me one thing" gets one.
        limit = 1 if route == "therapy" or _JUST_ONE.search(message) else 3
        chosen: list[Pick] = []
        for p in picks:
            if len(chosen) >= limit:
                break
            if not chosen or (p.score >= chosen[0].score - TIP_MARGIN and p.score >= TIP_FLOOR):
                chosen.append(p)
        if len(chosen) == 3 and chosen[2].score < chosen[0].score - TIP_MARGIN / 2:
            chosen = chosen[:2]
        if by_rank:  # they named what they want to hear about: no filter of ours applies
            if route == "therapy" and search_lead == self.therapy_section:
                return []  # "what does it say about counselling": the therapy block says it
            # the subject's own section, and another only when it fits about as well
            chosen = [p for n, p in enumerate(chosen)
                      if n == 0 or p.score >= chosen[0].score - TOPIC_MARGIN]
            return self._keep_theme_lead(chosen, picks, state, limit)[:limit]
        fitting = [p for p in chosen if self._fits(p, state, message, 0)]
        if not fitting:  # nothing else fits: the best of the rest, never tip 5 by default
            fitting = [p for p in picks if self._fits(p, state, message, 0)][:1] or chosen[:1]
        chosen = [p for n, p in enumerate(fitting) if self._fits(p, state, message, n)]
        if state.worn:
            # Worn out or carrying it alone: telling them honestly, and support for yourself,
            # not something more to do for them.
            easy = [p for p in picks if p.section_id not in WORN_ASKS_MORE]
            chosen = [p for p in chosen if p.section_id not in WORN_ASKS_MORE] or easy[:1] \
                or chosen
            return chosen[:limit]
        return self._keep_theme_lead(chosen, picks, state, limit)[:limit]

    def _fits(self, pick: Pick, state: ConversationState, message: str, n: int) -> bool:
        """A further tip earns its place: tip 5 when the situation speaks of support, and
        a third tip only when the situation's themes point to it (never to fill)."""
        themed = {s for t in state.current_themes for s in t.sections}
        if pick.section_id == "tip-5" and pick.section_id not in themed and not state.worn \
                and not _SUPPORT.search(message):
            return False
        return n < 2 or pick.section_id in themed

    def _keep_theme_lead(self, chosen: list[Pick], picks: list[Pick],
                         state: ConversationState, limit: int) -> list[Pick]:
        """The section the theme's coverage line names first is among the tips quoted."""
        lead = next((t.sections[0] for t in state.current_themes if t.sections), None)
        if lead is None or any(p.section_id == lead for p in chosen):
            return chosen
        pick = next((p for p in picks if p.section_id == lead), None)
        if pick is None or lead in state.cited:
            return chosen
        return [pick, *chosen[: limit - 1]]

    def _candidates(self, passages: Sequence[Any], sims: np.ndarray,
                    state: ConversationState, limits: Limits, route: str) -> list[Pick]:
        """One pick per section: retrieved sections, and those the themes point to."""
        passage_sim: dict[str, float] = {}
        for p in passages:
            if p.similarity is not None:
                sid = p.chunk.section_id
                passage_sim[sid] = max(passage_sim.get(sid, -1.0), float(p.similarity))
        sections = list(dict.fromkeys(
            [p.chunk.section_id for p in passages]
            + [s for t in state.current_themes for s in t.sections]))
        skip = {"intro", "conclusion"}  # context and summary, not tips
        if route == "therapy" and self.therapy_section:
            skip.add(self.therapy_section)  # it gets its own block
        picks = []
        for sid in sections:
            if sid in skip or not limits.ok(sid) or sid not in self.bank.sections:
                continue
            pick = self.section_pick(sid, sims, state)
            if pick is None:
                continue
            # The passage's similarity (lifted by its section's search keys) says whether
            # the section fits; the sentence's says which words to quote.
            base = PASSAGE_SHARE * passage_sim.get(sid, pick.score) + \
                (1 - PASSAGE_SHARE) * pick.score
            pick.score = base + self.section_bonus(sid, state)
            if sid == self.therapy_section and route != "therapy" and \
                    not any(t.therapy for t in state.themes):
                pick.score -= THERAPY_TIP_PENALTY
            picks.append(pick)
        picks.sort(key=lambda p: (-p.score, p.first))
        return picks

    def calls_for_therapy(self, message: str, route: str, state: ConversationState) -> bool:
        """True when the situation calls for the therapist directory, not just tip 6's words.

        The person asked about therapy, or described something entrenched (nothing works,
        years of it, separation talk), or a theme that needs it (an affair, grief). A new
        baby or feeling like roommates is not a therapy case, whatever the route.
        """
        if any(t.therapy for t in state.themes):
            return True
        texts = [message, *state.situation_texts]
        return any(self._therapy_call.search(t) for t in texts if t)

    def _therapy_paras(self, route: str, sims: np.ndarray, state: ConversationState,
                       limits: Limits, chosen: list[Pick], message: str = "") -> _Therapy:
        """Tip 6's own case on a therapy turn, and the directory (once) or a pointer."""
        first = chosen[0].section_id if chosen else None
        out = _Therapy()
        if route == "therapy" and state.current_themes and \
                not self.calls_for_therapy(message, route, state):
            # a life stage (a new baby, grief, a move) told without asking for help or
            # anything entrenched: the tips for it, and only an offer of directories
            if limits.therapy_note:
                out.paras.append(self.replies["therapy"]["offer"])
                out.offered = True
            return out
        if route == "therapy" and self.therapy_section and limits.ok(self.therapy_section):
            out.pick = self.therapy_pick(sims, state)
            if out.pick:
                out.paras += [self.replies["therapy"]["lead"], self.tip_line(out.pick)]
                first = self.therapy_section
        if limits.therapy_note and first == self.therapy_section:
            if not self.calls_for_therapy(message, route, state):
                out.paras.append(self.replies["therapy"]["offer"])
                out.offered = True
            elif state.directory_shown:
                out.paras.append(self.replies["therapy"]["pointer"])
            else:
                out.paras.append(limits.therapy_note.strip())
                out.note_used = True
        return out

    def therapy_pick(self, sims: np.ndarray, state: ConversationState) -> Pick | None:
        """Two sentences of the article's case for therapy, relevant to the message."""
        idx = self.bank.in_section(self.therapy_section or "")
        if not idx:
            return None
        # Rank by the article's case for therapy (the probe) and by the person's question,
        # so the quote is both the case and relevant to them.
        probe = self.bank.vectors[idx] @ self._probe_vec if self._probe_vec is not None else 0
        local = np.array(sims, copy=True)
        local[idx] = sims[idx] + 0.5 * probe
        pick = self.section_pick(self.therapy_section or "", local, state, n=2,
                                 allow_repeat=True)
        return pick


@dataclass
class _Therapy:
    paras: list[str] = field(default_factory=list)
    pick: Pick | None = None
    note_used: bool = False
    offered: bool = False  # only the short offer of directories: nothing to ask about yet


__all__ = [
    "Citation",
    "Composed",
    "FollowUp",
    "Limits",
    "OfflineResponder",
    "Pick",
    "Sentence",
    "SentenceBank",
    "cited_sections",
    "content_words",
    "frame",
    "join",
    "load_replies",
    "resolve_followup",
    "section_label",
    "short_title",
    "stable_pick",
]
