"""Understand a turn: what the message is doing (its act) and what the conversation holds.

Acts come from patterns for the obvious ("tip 3", "thanks", "is this saved") and, failing
those, from the nearest labelled examples (`data/acts.jsonl`) on the turn's one query
embedding. The conversation state is rebuilt from the history on every turn, so no
process keeps anything between turns: the partner's word and pronoun, the situation
themes the person gave (`data/themes.toml`), and what earlier replies already said.
"""

from __future__ import annotations

import json
import re
import tomllib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol

import numpy as np

from .data import read_text

ACTS = (
    "greeting", "thanks", "goodbye", "about_assistant", "privacy", "memory", "recap",
    "article_overview", "article_tip", "article_topic", "article_source", "more",
    "correction", "answer", "objection", "other_language", "situation", "off_topic", "safety",
)
# Acts answered from written replies in both modes: nothing to retrieve, nothing to verify.
WRITTEN_ACTS = frozenset(
    {"greeting", "thanks", "goodbye", "memory", "privacy", "about_assistant",
     "article_source", "other_language", "recap"}
)
# Acts a triage "off_topic" verdict does not override: only these are truly elsewhere.
_KNN_K = 5
KNN_MIN = 0.62  # nearest example at least this similar, else the message is a situation
KNN_MARGIN = 0.04  # the winning act's best example beats the best situation example by this
# A less similar nearest example still decides when it stands clear of every situation.
KNN_LOOSE_MIN = 0.52
KNN_LOOSE_MARGIN = 0.10
SHORT = 8  # words: greetings, thanks, answers and "more" are short


class Embeds(Protocol):
    """What the act detector needs from the embedding model."""

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...


# ---------------------------------------------------------------- data


def _data_text(name: str) -> str:
    return read_text(name)


@dataclass(frozen=True)
class Theme:
    """A situation from real life, and what the article offers for it."""

    name: str
    pattern: re.Pattern[str]
    summary: str
    acknowledge: tuple[str, ...]
    sections: tuple[str, ...]
    quotes: tuple[str, ...]
    avoid: tuple[str, ...] = ()
    coverage: str = ""
    covered: bool = True
    label: str = ""  # a few words naming the theme ("the long hours")
    recap: str = ""  # a full sentence about the person's situation, for recaps
    therapy: bool = False  # the theme itself calls for the therapist directory
    exclude: re.Pattern[str] | None = None  # uses of the words that are not this theme
    yields_to: tuple[str, ...] = ()  # themes that say it better when also found
    no_time: bool = False  # the couple is hardly ever together (opposite shifts)
    coverages: tuple[str, ...] = ()  # variants of `coverage`
    worn: bool = False  # the person carries a load already (caring, the only one trying)

    def found_in(self, text: str) -> bool:
        """True when the message speaks of this theme, once its look-alikes are masked."""
        masked = self.exclude.sub(" ", text) if self.exclude else text
        # "we're not fighting or anything": a theme named only to say it isn't so
        return any(not _NEGATED_BEFORE.search(masked[max(0, m.start() - 30): m.start()])
                   for m in self.pattern.finditer(masked))


_NEGATED_BEFORE = re.compile(
    r"\b(?:not|never|no|isn'?t|aren'?t|wasn'?t|weren'?t|don'?t|doesn'?t|didn'?t|without|nor)"
    r"(?:\s+(?:really|even|actually|always|constantly|that|have|has|got))?\s+$", re.I)


@cache
def load_themes() -> tuple[Theme, ...]:
    """Read the situation themes, in the order they are tried."""
    raw = tomllib.loads(_data_text("themes.toml"))

    def variants(t: dict) -> tuple[str, ...]:
        c = t.get("coverage", "")
        return tuple(c) if isinstance(c, list) else ((c,) if c else ())

    return tuple(
        Theme(
            name=t["name"],
            pattern=re.compile(t["pattern"], re.IGNORECASE),
            summary=t["summary"],
            acknowledge=tuple(t["acknowledge"]),
            sections=tuple(t["sections"]),
            quotes=tuple(t.get("quotes", ())),
            avoid=tuple(t.get("avoid", ())),
            coverage=(variants(t) or ("",))[0],
            covered=bool(t.get("covered", True)),
            label=t.get("label", t["name"].replace("_", " ")),
            recap=t.get("recap", ""),
            therapy=bool(t.get("therapy", False)),
            exclude=re.compile(t["exclude"], re.IGNORECASE) if t.get("exclude") else None,
            yields_to=tuple(t.get("yields_to", ())),
            no_time=bool(t.get("no_time", False)),
            coverages=variants(t),
            worn=bool(t.get("worn", False)),
        )
        for t in raw["themes"]
    )


@cache
def load_act_examples() -> tuple[tuple[str, str], ...]:
    """The labelled example messages for nearest-neighbour act detection: (act, text)."""
    rows = [json.loads(line) for line in _data_text("acts.jsonl").splitlines() if line.strip()]
    return tuple((r["act"], r["text"]) for r in rows)


def themes_in(text: str) -> list[Theme]:
    """The themes a message speaks of, in the data file's order.

    A theme needs real evidence: its words, once the uses that mean something else are
    masked ("works at the hospital" is a job, "moved in together" no move away), and no
    other theme found that says it better (night shifts are opposite hours, not long ones).
    """
    found = [t for t in load_themes() if t.found_in(text)]
    names = {t.name for t in found}
    return [t for t in found if not names.intersection(t.yields_to)]


# ---------------------------------------------------------------- the partner

_HE = re.compile(r"\b(husband|hubby|boyfriend|bf|fianc[eé]|he|him|his|he'?s|himself)\b", re.I)
_SHE = re.compile(r"\b(wife|girlfriend|gf|fianc[eé]e|she|her|hers|she'?s|herself)\b", re.I)
_PARTNER_WORD = re.compile(
    r"\bmy (husband|wife|boyfriend|girlfriend|partner|spouse|fianc[eé]e?|hubby|bf|gf|"
    r"other half|so)\b", re.I)
_WORD_PRONOUN = {"husband": "he", "hubby": "he", "boyfriend": "he", "bf": "he",
                 "fiance": "he", "fiancé": "he", "wife": "she", "girlfriend": "she",
                 "gf": "she", "fiancee": "she", "fiancée": "she"}
_CANONICAL = {"hubby": "husband", "bf": "boyfriend", "gf": "girlfriend", "so": "partner",
              "other half": "partner", "fiance": "fiancé", "fiancee": "fiancée"}
PRONOUNS = {
    "he": {"they": "he", "them": "him", "their": "his"},
    "she": {"they": "she", "them": "her", "their": "her"},
    "they": {"they": "they", "them": "them", "their": "their"},
}


def partner_of(texts: Sequence[str]) -> tuple[str, str]:
    """The partner's word ('husband', 'partner') and pronoun ('he', 'she', 'they')."""
    word, pronoun = "partner", None
    for text in texts:
        m = _PARTNER_WORD.search(text)
        if m:
            found = m.group(1).lower()
            word = _CANONICAL.get(found, found)
            pronoun = _WORD_PRONOUN.get(found, pronoun)
            break
    if pronoun is None:
        joined = " ".join(texts)
        he, she = len(_HE.findall(joined)), len(_SHE.findall(joined))
        pronoun = "he" if he > she else "she" if she > he else "they"
    return word, pronoun


# ---------------------------------------------------------------- the state

_QUOTED = re.compile(r"\"([^\"]{8,}?)\" \*\(")
_THERAPY_NOTE_MARK = "Finding a couples therapist"


@dataclass
class ConversationState:
    """What the conversation holds, rebuilt from the history at every turn."""

    partner: str = "partner"
    pronoun: str = "they"
    themes: list[Theme] = field(default_factory=list)  # earlier turns first
    current_themes: list[Theme] = field(default_factory=list)  # this message's
    earlier_replies: str = ""  # every earlier reply, to avoid repeating any of it
    cited: list[str] = field(default_factory=list)  # sections cited so far, in order
    last_cited: list[str] = field(default_factory=list)  # the last reply's sections
    last_reply: str = ""
    last_question: str = ""  # the question the last reply ended on, if any
    directory_shown: bool = False
    situation_texts: list[str] = field(default_factory=list)  # the person's situation turns
    turns: int = 0  # earlier user turns
    # What the person ruled out, for the rest of the conversation: sections not to offer
    # again, sentences not to quote again, and what their life leaves no room for
    # ("therapy_out", "no_time", "partner_has_friends", "has_friends", "no_friends"), and what
    # they want from the partner ("wants_to_receive": to be noticed, not to do more).
    rejected: set[str] = field(default_factory=set)
    avoid_phrases: tuple[str, ...] = ()
    constraints: set[str] = field(default_factory=set)
    pushback: str = ""  # what this message pushes back on: "friends", "therapy", "first"...
    clarify: str = ""  # the tip this message reads as unfair ("so you're saying..."), if any

    @property
    def worn(self) -> bool:
        """The person is worn out, carrying the effort alone, or caring for someone: replies
        ask nothing more of them for their partner."""
        return any(t.worn for t in self.themes) or any(
            _WORN.search(t) for t in self.situation_texts)

    @property
    def wants_to_receive(self) -> bool:
        """They want to be noticed, thanked, told ("I just want him to SAY it")."""
        return "wants_to_receive" in self.constraints

    @property
    def words(self) -> dict[str, str]:
        """Placeholders for written replies: {partner}, {they}, {them}, {their}."""
        return {"partner": f"your {self.partner}", "Partner": f"Your {self.partner}",
                **PRONOUNS[self.pronoun]}

    @property
    def situation(self) -> str:
        """A one-line summary of the situation, in the assistant's words (for recaps, LLM)."""
        if not self.themes:
            return ""
        parts = [t.summary.format(**self.words) for t in self.themes]
        return "; ".join(parts)

    def closer_fits(self, text: str) -> bool:
        """False for a closing question their situation rules out (therapy, time together)."""
        if "therapy_out" in self.constraints and _THERAPY_TALK.search(text):
            return False
        if self.constraints & {"has_friends", "partner_has_friends"} and _FRIEND_TALK.search(text):
            return False
        if "no_friends" in self.constraints and re.search(r"\bfriends?\b", text, re.I):
            return False  # "I have zero friends here": no "a friend you've been meaning to see"
        if "tip-4" in self.rejected and _SAY_TALK.search(text):
            return False
        if self.wants_to_receive and _GIVING.search(text):
            return False  # they asked to be noticed: no "what could you do for them"
        return not ("no_time" in self.constraints and _TIME_TOGETHER.search(text))

    def used(self, text: str) -> bool:
        """True when an earlier reply already said this."""
        return bool(text) and text.strip() in self.earlier_replies

    def fresh(self, options: Sequence[str], key: str) -> str:
        """An option no earlier reply used, chosen stably by `key` (any, if all were)."""
        from .respond import stable_pick

        filled = [fill(o, self.words) for o in options]
        unused = [o for o in filled if not self.used(o)]
        return stable_pick(unused or filled, key)


class _Keep(dict):
    """Fills the placeholders it knows and leaves the others for the caller."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(template: str, words: dict[str, str]) -> str:
    """A template with the placeholders `words` knows filled, the others left as they are."""
    return template.format_map(_Keep(words))


def build_state(message: str, history: Sequence[dict], label_to_section: dict[str, str]
                ) -> ConversationState:
    """Rebuild the conversation's state from its history and the new message."""
    from .respond import cited_sections

    users = [h["content"] for h in history if h.get("role") == "user"]
    replies = [h["content"] for h in history if h.get("role") == "assistant"]
    routes = _user_routes(history)
    safe_users = [u for u, route in routes if route not in ("crisis", "abuse")]
    word, pronoun = partner_of([*users, message])
    themes: list[Theme] = []
    for text in safe_users:
        themes += [t for t in themes_in(text) if t not in themes]
    current = themes_in(message)
    # A theme yields to a better one told earlier too: "we used to talk about the kids" after
    # "our youngest left for college" is still the empty nest, not raising children.
    told = {t.name: t for t in themes}
    better = [told[n] for t in current for n in t.yields_to if n in told]
    current = [t for t in current if not told.keys() & set(t.yields_to)]
    current += [t for t in better if t not in current]
    themes += [t for t in current if t not in themes]
    cited: list[str] = []
    for r in replies:
        cited += [s for s in cited_sections(r, label_to_section) if s not in cited]
    last = replies[-1] if replies else ""
    state = ConversationState(
        partner=word, pronoun=pronoun, themes=themes, current_themes=current,
        earlier_replies="\n\n".join(replies), cited=cited,
        last_cited=cited_sections(last, label_to_section), last_reply=last,
        last_question=_last_question(last),
        directory_shown=any(_THERAPY_NOTE_MARK in r for r in replies),
        situation_texts=[t for t in (told_part(u) for u in [*safe_users, message]) if t],
        turns=len(users),
    )
    _ruled_out(state, message, history, label_to_section)
    return state


# ---------------------------------------------------------------- what they ruled out

_THERAPY_WORD = r"(?:couples? )?(?:therap\w*|counsell?\w*|counsel(?:or|ing)\w*|marriage guidance)"
_THERAPY_OUT = re.compile(
    r"\b(?:refus\w*|won'?t|wont|will not|doesn'?t want|does not want|don'?t want|"
    r"not willing|isn'?t willing|would never|hates?|says? no|said no|not interested in|"
    r"not open to|doesn'?t believe in|won'?t even consider)\b[^.!?]{0,30}\b"
    + _THERAPY_WORD +
    r"|\b" + _THERAPY_WORD + r"[^.!?]{0,60}\b(?:didn'?t (?:help|work|do (?:anything|much))|"
    r"did nothing|was useless|were useless|made (?:it|things) worse|waste of|stopped|quit|"
    r"gave up|don'?t want to go back|not going back|won'?t go back|out of the question|"
    r"off the table|not an option|too expensive|can'?t afford|isn'?t for us|not for us)"
    r"|(?<!never )(?<!not )(?<!n't )(?<!n’t )\b(?:tried|did|done|been to|went to|had|stopped|"
    r"quit)\b[^.!?]{0,25}\b" + _THERAPY_WORD +
    r"|\b(?:can'?t|cannot|couldn'?t) (?:afford|pay for) (?:a )?" + _THERAPY_WORD +
    r"|\bno money for " + _THERAPY_WORD, re.I)
_THERAPY_TALK = re.compile(r"\b(therap\w*|counsel\w*|session|seeing someone|see someone)\b",
                           re.I)
_NO_FRIENDS = re.compile(r"\b(?:no|zero|don'?t have (?:any )?|haven'?t (?:got )?(?:any )?|"
                         r"lost (?:all )?(?:my )?)friends\b|\bno one (?:here|to talk to)\b|"
                         r"\bdon'?t know anyone\b", re.I)
# "I just want him to notice me": they want to receive, not to do more
WANTS_TO_RECEIVE = re.compile(
    r"\b(?:i|i just|i only|i really)\s+(?:want|need|wish|wanted|needed|wished)\s+(?:him|her|them|"
    r"my \w+)\s+to\s+(?:actually\s+|just\s+)?(?:notice|see|say|tell|show|hug|touch|appreciate|"
    r"ask|listen|hear|look at|acknowledge|make time|put (?:me|us) first|want me|care|thank)\b|"
    r"\b(?:he|she|they)\s+(?:never|doesn'?t|don'?t|won'?t|hardly ever)\s+(?:notices?|sees?|says?|"
    r"tells? me|shows?|appreciates?|asks?|thanks? me|says? thank you)\b", re.I)
_GIVING = re.compile(r"\b(do for|would love|feel loved|gestures?)\b", re.I)
_FRIEND_TALK = re.compile(r"\b(friends?|reach out to|one person)\b", re.I)
# a closer asking them to say or raise it, when saying it is what they already tried
_SAY_TALK = re.compile(r"\b(say|tell|bring it up|sayable|calm moment)\b", re.I)
_TIME_TOGETHER = re.compile(r"\b(together this week|doing together|you two could try|"
                            r"date night|this evening together)\b", re.I)
_HAS_FRIENDS = re.compile(
    r"\b(?:he|she|they|husband|wife|partner|boyfriend|girlfriend)(?:'s| is| are)? "
    r"(?:already |always |also |got |)(?:has|have|got) (?:plenty of |lots of |loads of |"
    r"enough |so many |a lot of |his |her |their |tons of )*(?:friends|mates|buddies)"
    r"|\b(?:he|she|they)(?:'s| is| are)? (?:always |constantly |forever )?(?:out|away|off) "
    r"with (?:his|her|their) (?:friends|mates|buddies|the boys|the girls)"
    r"|\b(?:spends?|spending|goes out|going out|hangs? out|hanging out)\b[^.!?]{0,30}\bwith "
    r"(?:his|her|their) (?:friends|mates|buddies|the boys|the girls)"
    r"|\b(?:friends|mates|buddies)\b[^.!?]{0,25}\b(?:the|half the|part of the|kind of the|"
    r"sort of the|actually the|exactly the|whole) problem", re.I)
_FIRST_MOVE = re.compile(
    r"\bwhy should i\b|\bwhy (?:is it|am i) always (?:on )?me\b|\bwhy do i (?:always )?have to\b|"
    r"\balways (?:on |up to )?me\b|\bup to me\b|\bmy job to\b|\bwhy me\b|"
    r"\bshouldn'?t (?:he|she|they) (?:make|put|try|be|go)\b|"
    r"\b(?:he|she|they) should (?:make|be|go|put|try)\b|\bmake an effort too\b|"
    r"\bthe one who (?:always )?(?:has|have) to\b|\bi shouldn'?t have to\b", re.I)
_TRIED_THAT = re.compile(
    r"\b(?:i|we)(?:'ve| have)? (?:already )?(?:tried|done|do) (?:that|this|it|those|these)\b|"
    r"\b(?:doesn'?t|won'?t|didn'?t|does not|will not|did not) work for (?:us|me)\b|"
    r"\b(?:that|this|it) (?:doesn'?t|won'?t|didn'?t|does not|will not) (?:work|help)\b|"
    r"\bnot for (?:us|me)\b|\bwe already do\b|\b(?:that|this|it|those) (?:made no difference|"
    r"did nothing)\b", re.I)
# "I did try telling him how I feel", "we already do date nights": they tried something.
_TRIED_IT = re.compile(
    r"\b(?:i|we)(?:'ve| have)? (?:already |really |honestly )*(?:tried\b|did (?:already |really )?"
    r"try\b)"
    r"(?! (?:and|to) (?:find|figure|work out|understand)\b)|"
    r"\b(?:i|we)(?:'ve| have)? (?:already )?(?:done|did) (?:that|this|it|those|these)\b|"
    r"\b(?:i|we)(?:'ve| have)? (?:already |really |honestly |even )+(?:told|asked|explained|"
    r"talked to|brought (?:it|this) up|said)\b|"
    r"\bwe already (?:do|have|go|spend|make|talk)\b|\bbeen there,? done that\b|"
    r"\b(?:i|we) (?:do|have) that already\b", re.I)
# ...and it fell flat: "he just shrugged", "nothing changed".
_FELL_FLAT = re.compile(
    r"\b(shrug\w*|ignor\w*|brushed? (?:it |me )?off|laugh\w* (?:it )?off|nothing changed|"
    r"(?:didn'?t|doesn'?t|did not|does not|won'?t) (?:help|work|change anything|land|matter)|"
    r"no difference|went nowhere|got nowhere|(?:he|she|they) (?:just )?(?:walked off|left the room|"
    r"changed the subject|got defensive|got angry|rolled (?:his|her|their) eyes)|"
    r"didn'?t (?:say|do) anything|said nothing)\b", re.I)
# The person has friends of their own: "I have plenty of friends, that's not the issue".
_SELF_FRIENDS = re.compile(
    r"\bi(?:'ve| have)? (?:already |actually |do |)(?:have|got) (?:plenty of |lots of |loads of |"
    r"enough |so many |a lot of |good |great |close |my own |tons of )*(?:friends|mates|people)\b|"
    r"\b(?:my )?friends (?:aren'?t|are not|isn'?t|is not) the (?:issue|problem)\b|"
    r"\bi'?m not (?:short of|lacking|missing) friends\b", re.I)


# "She's too tired for date nights", "we can't afford trips": a tip their life rules out.
_CANT_DO = re.compile(
    r"\b(?:too (?:tired|busy|sick|ill|exhausted|worn out|stressed) (?:for|to)|no (?:time|energy|"
    r"money|babysitter|sitter) for|can'?t (?:afford|manage|do|face)|(?:isn'?t|is not|aren'?t|"
    r"are not|not) (?:up to|possible|realistic|an option)|out of the question)\b", re.I)


def cant_do_tips(text: str) -> list[str]:
    """The tip a "she's too tired for date nights" message rules out, [] if none named."""
    m = _CANT_DO.search(text)
    if m is None:
        return []
    window = text[max(0, m.start() - 30): m.end() + 30]
    # things to do together or for each other; talking is never "ruled out" this way
    return [sid for sid, rx in _CLARIFY_TIPS if sid in ("tip-2", "tip-3", "tip-5")
            and rx.search(window)][:1]


def tried_tips(text: str) -> list[str]:
    """The tips a "we tried that" message names by what was tried ("telling him how I
    feel": tip 4), in the message's words after "tried"; [] when it names none."""
    m = _TRIED_IT.search(text)
    if m is None:
        return []
    rest = text[m.end():]
    if re.search(r"\b(told|asked|explained|talked|brought|said)\b", m.group(0), re.I) and \
            not re.search(r"\b(therap\w*|counsel\w*)", rest, re.I):
        return ["tip-4"]  # "I already told her I feel distant": saying it, tip 4
    # what was tried is the clause right after: "tried telling him how I feel, he shrugged"
    rest = re.split(r"[,.;:!?]|\b(?:but|and|so|because|maybe)\b", rest, maxsplit=1)[0]
    return [sid for sid, rx in _CLARIFY_TIPS if rx.search(rest)][:1]


_RULED_OUT = re.compile(
    r"\b(?:that'?s|thats|it'?s|that is|which is) (?:out|off the table|not an option|"
    r"not happening|a no(?:-go)?|never going to happen|impossible)\b|\bnot an option\b|"
    r"\bwon'?t happen\b|\bno way\b", re.I)
_WORN = re.compile(
    r"\b(exhausted|worn (?:out|down)|wiped out|drained|running on empty|burn(?:ed|t) out|wrecked|"
    r"knackered|shattered|running on fumes|dead on (?:my|our) feet|can'?t stop crying|"
    r"crying (?:every|all|most)|tired of it all|so lonely|completely alone|"
    r"so tired|tired all the time|(?:i'?m|i am) (?:his|her|their) (?:full[- ]time )?(?:carer|"
    r"nurse)|(?:caring|care) for (?:him|her|them|my (?:husband|wife|partner|boyfriend|"
    r"girlfriend))|(?:the )?only one (?:trying|who tries|making|putting))\b",
    re.I)
# "So you're saying I shouldn't rely on her?": they read a tip as blame or as unfair.
YOURE_SAYING = re.compile(
    r"^\W*(?:(?:so|wait|hang on|hold on|ok(?:ay)?|and|but|hmm+)\b[\s,.]*)*(?:you'?re|you are|"
    r"are you|is (?:the article|it)|the article(?:'s| is)|so it'?s) (?:basically |just |really )?"
    r"(?:saying|telling me|suggesting|implying)\b(?! (?:the same|that (?:again|already)|it again|"
    r"this again))", re.I)
# Which tip some words name, for a "so you're saying" message, what a correction wants,
# and what they tried or can't do: the words people use for each tip, tried in this order.
_CLARIFY_TIPS = (
    ("tip-5", re.compile(r"\b(rely|depend\w*|lean(?:ing)? on|friends?|support|community|"
                         r"needy|too much (?:of|on|from)|going out|seeing people|hobb\w*)\b",
                         re.I)),
    ("tip-1", re.compile(r"\b(my fault|blame|go(?:ing)? first|first move|myself|my part|"
                         r"it'?s (?:on )?me|i'?m the problem|i caused|apologi\w*|sorry)\b",
                         re.I)),
    ("tip-6", re.compile(r"\b(therap\w*|counsel\w*|a pro\b|professional)", re.I)),
    ("tip-2", re.compile(r"\b(coffee|notes?|massages?|gestures?|little things|do more for|"
                         r"gifts?|flowers|surpris\w*)\b", re.I)),
    ("tip-3", re.compile(r"\b(date nights?|dates?|quality time|(?:one|a) night a week|nights? "
                         r"(?:together|with me)|evenings? (?:together|with me)|"
                         r"time (?:together|for us|for each "
                         r"other|with (?:him|her|them|each other))|make time|do(?:ing)? things "
                         r"together|walks?|class(?:es)?|trips?|cook\w*|dinners?|weekends? away)\b",
                         re.I)),
    ("tip-4", re.compile(r"\b(talk\w*|tell\w*|told|say\w*|said|bring\w* (?:it )?up|brought it up|"
                         r"honest\w*|open(?:ing)? up|how i feel|explain\w*|conversations?)\b",
                         re.I)),
)


# "I'm not asking how to talk to him, I want to know how to make time for us": the tip
# their words name, for what they want and for what they ruled out.
_WANTED = re.compile(r"\b(?:i (?:just )?(?:want|wanted|need|meant|mean|was asking|am asking)|"
                     r"i'?m (?:asking|looking for|after)|i'?d like)\b(?P<rest>[^.!?]*)", re.I)
_NOT_ASKING = re.compile(r"\b(?:(?:i'?m not|i am not|i wasn'?t|not) (?:asking|looking for|after)|"
                         r"(?:i'?m|im|i am) not the one (?:who|that) (?:needs?|has) to|"
                         r"i (?:don'?t|do not) (?:need|want) (?:help|advice|tips)?(?: with| on)?)"
                         r"\b(?P<rest>[^.!?,;]*)", re.I)


def named_tip(text: str) -> str:
    """The tip some words name ("make time for us": tip 3), or ""."""
    return next((sid for sid, rx in _CLARIFY_TIPS if rx.search(text)), "")


def wanted_tips(text: str) -> tuple[str, str]:
    """(the tip a correction asks for, the tip it says it didn't ask about), "" if none."""
    not_asked = _NOT_ASKING.search(text)
    # what they didn't ask for stops where what they do want begins ("... i just want")
    refused = re.split(r"\bi\s+(?:just |only |really )?(?:want|need|meant|mean)\b",
                       not_asked.group("rest"), maxsplit=1)[0] if not_asked else ""
    rest = text[not_asked.start("rest") + len(refused):] if not_asked else text
    want = next((t for t in (named_tip(m.group("rest")) for m in _WANTED.finditer(rest)) if t),
                "")
    return want, named_tip(refused)


def clarified_tip(text: str, last_tips: Sequence[str]) -> str:
    """The tip a "so you're saying..." message reads back: named by its words, else the
    last reply's first tip."""
    for sid, rx in _CLARIFY_TIPS:
        if rx.search(text) and (sid in last_tips or not last_tips or sid in ("tip-5", "tip-1")):
            return sid
    return next(iter(last_tips), "")


def _clarified(state: ConversationState, text: str, tips: Sequence[str], now: bool) -> bool:
    """'So you're saying...': the tip they read as unfair is ruled out (and, for this
    message, explained). True when the message reads a tip back."""
    sid = clarified_tip(text, tips) if YOURE_SAYING.search(text) else ""
    if not sid:
        return False
    state.rejected.add(sid)  # never offered again: they read it as unfair
    if now:
        state.clarify = sid
    return True


_NOT_THE_ISSUE = re.compile(r"\bnot (?:the|an|my|our) (?:issue|problem|point)\b|\bthat'?s not it\b",
                            re.I)
FIRST_MOVE_PHRASE = "first move"  # tip 1's "Don't wait for your spouse to make the first move."


# What a message tells that shapes later replies without ruling a tip out.
_TOLD = (("no_friends", _NO_FRIENDS), ("wants_to_receive", WANTS_TO_RECEIVE))


def _tried(state: ConversationState, text: str, reply: str, tips: Sequence[str]) -> str:
    """What they tried ("I did try telling him", "we already do date nights") is ruled out:
    the tip it names, else the last reply's first two. Returns the pushback kind, or ""."""
    cant = cant_do_tips(text)
    if cant:
        state.rejected.update(cant)
        return "cant" if reply else ""
    named = tried_tips(text)
    tried = _TRIED_IT.search(text)
    if named:
        # what they tried, by name: that tip, not the last two
        state.rejected.update(named)
        kind = "tried_it" if reply else ""
    elif tips and (_TRIED_THAT.search(text) or _RULED_OUT.search(text) or tried):
        state.rejected.update(tips[:2])
        kind = "tried_it" if tried else "tried"
    else:
        return ""
    return "tried_flat" if kind == "tried_it" and _FELL_FLAT.search(text) else kind


def _ruled_out(state: ConversationState, message: str, history: Sequence[dict],
               label_to_section: dict[str, str]) -> None:
    """What the person ruled out so far: each of their messages read against the reply
    before it. Rebuilt every turn, like the rest of the state."""
    from .respond import cited_sections

    before = ""
    pairs: list[tuple[str, str]] = []
    for h in history:
        if h.get("role") == "assistant":
            before = h["content"]
        elif h.get("role") == "user" and h.get("route") not in ("crisis", "abuse"):
            pairs.append((h["content"], before))
    pairs.append((message, state.last_reply))
    avoid: list[str] = []
    for n, (text, reply) in enumerate(pairs):
        now = n == len(pairs) - 1
        tips = [s for s in cited_sections(reply, label_to_section) if s.startswith("tip-")]
        kind = ""
        if _THERAPY_OUT.search(text) or (_RULED_OUT.search(text) and "tip-6" in tips[:1]):
            state.constraints.add("therapy_out")
            state.rejected.add("tip-6")
            kind = "therapy"
        state.constraints.update(name for name, rx in _TOLD if rx.search(text))
        if _SELF_FRIENDS.search(text):
            state.constraints.add("has_friends")
            state.rejected.add("tip-5")
            kind = kind or "self_friends"
        if _HAS_FRIENDS.search(text):
            state.constraints.add("partner_has_friends")
            state.rejected.add("tip-5")
            kind = kind or ("friends" if "tip-5" in tips or _NOT_THE_ISSUE.search(text)
                            else "friends_new")
        if _FIRST_MOVE.search(text):
            avoid.append(FIRST_MOVE_PHRASE)
            kind = kind or "first"
        if _clarified(state, text, tips, now):
            kind = kind or "clarify"
        kind = kind or _tried(state, text, reply, tips)
        if now:
            state.pushback = kind
    if any(t.no_time for t in state.themes):
        state.constraints.add("no_time")
        state.rejected.add("tip-3")
    state.avoid_phrases = tuple(dict.fromkeys(avoid))


# What a message tells about the person's life, for a recap: not "what else" or "thanks".
_NOT_TOLD = re.compile(
    r"^\W*(what|how|why|which|who|where|can you|could you|do you|does it|is there|tell me|"
    r"give me|sum|recap|summari|thanks?|thank you|ok|okay|yes|no|maybe|idk)\b", re.I)


# Sentences about the chat itself, not their life: "I want to show him this", "sum it up".
_META = re.compile(
    r"\b(sum(?:marise|marize)?(?: it| this| that)? up|summar\w+|recap|(?:show|send|read|"
    r"forward)(?: it| this| that)? (?:to )?(?:him|her|them|my \w+)(?: this| it)?\b|"
    r"what i (?:said|told|wrote)|this (?:chat|conversation)|(?:can|could|would) you)\b", re.I)


def told_part(text: str) -> str:
    """What a message tells about their life ("he's started working late too"), without
    its questions, requests and words about the chat; "" when it tells nothing."""
    sentences = re.split(r"(?<=[.!?])\s+|\s*\n+\s*", " ".join(text.split()))
    kept = [x for x in sentences if x and not x.endswith("?") and not _NOT_TOLD.match(x)
            and not _META.search(x)]
    told = " ".join(kept).strip()
    if not told or len(told.split()) < 4:
        return told if told and themes_in(told) else ""
    return told if _SITUATION_HINT.search(told) or themes_in(told) else ""


_SECOND_PERSON = (
    (r"\bmy (\w+(?: \w+)?) and i\b", r"you and your \1"), (r"\bme and my\b", "you and your"),
    (r"\b(one|either|neither|both|each|none|all) of us\b", r"\1 of you"),
    # apostrophes required where the bare word is another word: "well", "ill", "were", "wed"
    (r"\bi'?m\b|\bi am\b", "you're"), (r"\bi'?ve\b", "you've"), (r"\bi'd\b", "you'd"),
    (r"\bi'll\b", "you'll"), (r"\bi was\b", "you were"),
    # "we" is the two of them: "you two", never a bare "you" that reads as the person alone
    (r"\bwe(?:'re| are)\b", "you two are"), (r"\bwe(?:'ve| have)\b", "you two have"),
    (r"\bweve\b", "you two have"), (r"\bwe'll\b", "you two will"),
    (r"\bwe'd\b", "you two would"), (r"\bwe were\b", "you two were"),
    (r"\bwe\b", "you two"), (r"\bi\b", "you"), (r"\bmy\b", "your"), (r"\bour\b", "your"),
    (r"\bmine\b", "yours"), (r"\bours\b", "yours"), (r"\bmyself\b", "yourself"),
    (r"\bourselves\b", "yourselves"), (r"\bus\b", "the two of you"), (r"\bme\b", "you"),
)
RECAP_WORDS = 40  # words of one message kept in a recap


def in_second_person(text: str) -> str:
    """Their words told back to them: 'my husband and I barely talk' -> 'you and your
    husband barely talk'. Only pronouns change; what they said stays theirs."""
    t = " ".join(text.replace("’", "'").split())
    t = re.sub(r"^(?:(?:and|so|but|also|plus|oh|well|ok(?:ay)?|yeah|yes|yep|yup|no|nah|nope|"
               r"hey|hi|hello|um+|uh+|hmm+|honestly|basically)\b[\s,.!]*)+", "", t, flags=re.I)
    words = t.split()
    if len(words) > RECAP_WORDS:
        t = " ".join(words[:RECAP_WORDS]).rstrip(",;:") + "…"
    for pattern, repl in _SECOND_PERSON:
        t = re.sub(pattern, repl, t, flags=re.I)
    t = re.sub(r"\byou (am)\b", "you are", t)
    t = re.sub(r"\b[A-Za-z']+\b", lambda m: _TIDY.get(m.group(0).lower(), m.group(0)), t)
    t = re.sub(r"\s+([,.!?;:])", r"\1", t).strip()
    if t and t[-1] not in ".!?…":
        t += "."
    # Every sentence starts with a capital, as a tidy note would.
    return re.sub(r"(^|[.!?]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), t)


# Everyday misspellings and shorthand, tidied in a recap the person may show someone.
_TIDY = {"tv": "TV", "lonley": "lonely", "lonly": "lonely", "realy": "really", "dont": "don't",
         "doesnt": "doesn't", "didnt": "didn't", "cant": "can't", "wont": "won't",
         "isnt": "isn't", "wasnt": "wasn't", "hes": "he's", "shes": "she's", "thats": "that's",
         "theyre": "they're", "alot": "a lot", "becuase": "because", "beacuse": "because",
         "untill": "until", "theres": "there's", "whats": "what's",
         "youre": "you're", "wouldnt": "wouldn't", "couldnt": "couldn't", "havent": "haven't",
         "recieve": "receive", "definately": "definitely", "u": "you",
         "ur": "your", "bc": "because", "cuz": "because", "coz": "because", "tho": "though",
         "thru": "through", "pls": "please", "wanna": "want to", "gonna": "going to",
         "kinda": "kind of", "anymroe": "anymore", "somtimes": "sometimes",
         "togther": "together", "togeather": "together", "freinds": "friends",
         "freind": "friend", "tlak": "talk"}


def _user_routes(history: Sequence[dict]) -> list[tuple[str, str | None]]:
    """Each user message with the route of the reply it got (the reply carries it)."""
    out: list[tuple[str, str | None]] = []
    for i, h in enumerate(history):
        if h.get("role") != "user":
            continue
        reply = next((x for x in history[i + 1:] if x.get("role") == "assistant"), {})
        out.append((h["content"], h.get("route") or reply.get("route")))
    return out


def _last_question(reply: str) -> str:
    """The question a reply ended on (before any safety line appended after it)."""
    paras = [p.strip() for p in reply.split("\n\n") if p.strip()]
    for p in reversed(paras[-2:]):
        if p.endswith("?"):
            return p
    return ""


# ---------------------------------------------------------------- acts

_ENGLISH = frozenset(
    """the a an and or but i you he she we they my your his her our me him is are was
    were be been do does did not no yes to of in on for with at it this that what how why
    when can could would should will just so very feel like about from have has had don't
    im i'm its it's husband wife partner boyfriend girlfriend""".split()
)
_FOREIGN = frozenset(
    """hola gracias el la los las que de del mi mis es y por para con una uno pero muy esta está
    estoy tengo habla hablar esposo esposa novio novia marido mujer siento sé nada
    je tu il elle nous vous et est les des une pas mon ma mes avec pour dans suis mari
    femme copain copine parle plus ne ich du er sie wir und ist nicht mein meine mit
    für der die das ein eine mann frau freund freundin spricht mehr eu você ele ela
    não meu minha com uma mais fala marido namorado namorada io lui lei non il mio mia
    con per che sono marito moglie parla più ik jij hij zij niet mijn met een vriend""".split()
)
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")


def is_other_language(text: str) -> bool:
    """True when most letters are not Latin, or another language's words outnumber English."""
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 2:
        return False
    latin = sum("LATIN" in unicodedata.name(c, "") for c in letters)
    if latin < len(letters) / 2:
        return True
    words = [w.lower().replace("’", "'") for w in _WORD.findall(text)]
    english = sum(w in _ENGLISH for w in words)
    other = sum(w in _FOREIGN for w in words)
    return other >= 2 and other > english


def _rx(*parts: str) -> re.Pattern[str]:
    return re.compile("|".join(parts), re.IGNORECASE)


_NUM_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_ORDINAL_WORDS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3,
                  "fourth": 4, "4th": 4, "fifth": 5, "5th": 5, "sixth": 6, "6th": 6,
                  "last": -1, "final": -1}
_TIP_NUMBER = re.compile(
    r"\b(?:tip|point|step|way|number|no\.?)\s*#?\s*(\d{1,2}|one|two|three|four|five|six)\b"
    r"|#\s*(\d)\b", re.I)
_TIP_ORDINAL = re.compile(
    r"\b(?:the\s+)?(first|1st|second|2nd|third|3rd|fourth|4th|fifth|5th|sixth|6th|last|final)"
    r"\s+(tip|one|point|step|way|idea|suggestion)\b", re.I)

# Patterns for the obvious, tried in order; the first that matches decides.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("recap", _rx(r"\b(sum(?:marise|marize)?|recap)\b.{0,20}\b(what|everything)\s+(i|i've)\s+"
                  r"(told|said|shared|wrote|described)",
                  r"\bwhat (have|did) i (told|tell|say|said|share|shared) (you|so far)",
                  r"\b(recap|summary) of (my|what i|our convo|our conversation|this conversation)",
                  r"\bcan you (recap|summari[sz]e) (my|our|this|the conversation)",
                  r"\b(recap|sum (it|that|this) up) (please|for me)\b.{0,20}(i|my)\b",
                  r"^(recap|sum (it )?up|summary|summarise|summarize)( please| pls)?[.!?]*$",
                  r"\b(recap|summary|sum up|summari[sz]e|go over|repeat back)\b.{0,12}\b(my|our) "
                  r"(situation|story|chat|conversation|problem|marriage|relationship)",
                  r"\b(recap|summary) of (our|the|this) (chat|conversation|talk)",
                  r"\bwhat (have|did) we (talked?|discuss(ed)?|covered?|go over|gone over)\b",
                  r"\b(remind me|tell me) what (we|i) (talked|said|told|discussed|shared)",
                  r"\bwhat (do|did) you (know|understand|understood|get) about (me|us|my)\b",
                  r"\bwhat you('ve| have)? understood about (me|us|my)\b",
                  r"\bwhat('s| is) my situation\b.{0,20}\b(nutshell|short|summary)")),
    ("article_source", _rx(r"\bwho (wrote|writes|authored|is the author|made|published)\b"
                           r"(?!.{0,15}\byou\b)",
                           r"\b(author|writer)s?\b(?!.{0,20}\bhim\b)",
                           r"\bwhere (is|does|did) (this|it|the article|that|the advice|"
                           r"your info\w*|the info\w*) (come|from|taken)",
                           r"\b(what|which) (is|are) (the|your|its) sources?\b",
                           r"\bsources?\b.{0,20}\b(article|advice|this|tips)\b",
                           r"\b(article|advice|tips)\b.{0,20}\bsources?\b",
                           r"\bwho is (joe ricciardi|lisa firestone|anchor light|family fire)",
                           r"\b(based on|backed by) (research|science|evidence)",
                           r"\b(what|which) article\b(?!.{0,20}\b(say|says|about|cover|mention))",
                           r"\bwhat('s| is) (this|the) article called\b",
                           r"\b(is|was) (this|it|the article|the advice) (from|based on) (a )?"
                           r"(real )?(study|studies|research|science|evidence|expert)",
                           r"\bevidence[- ]based\b", r"\bwhere did you get (this|that|your)",
                           r"\b(who|what)('s| is| are) (joe ricciardi|lisa firestone|anchor light|"
                           r"family fire)", r"\bwhere('s| is) (this|it) from\b",
                           r"\b(is|was) (this|it|the article) (written|by)\b")),
    ("article_overview", _rx(r"\b(list|summar\w+|sum up|outline|overview|tl;?dr|recap|"
                             r"go over|run (me )?through|give me)\b.{0,25}\b(the )?(article|"
                             r"tips|tip list|six|6|all of them|points|steps|ways)\b",
                             r"\bwhat (are|r) (the|all the|its|the article'?s) (six |6 )?"
                             r"(tips|ways|steps|points|main points)",
                             r"\b(all|the) (six|6) (tips|ways|steps)\b",
                             r"\bwhat('s| is| does) (in )?(the|this) article\b(?!['’]s)"
                             r"(?!.{0,30}\b(about|for|on|regarding)\b)"
                             r"(?!.{0,40}\b(author|wrote|source)\b)",
                             r"\bwhat does (the|this) article say\??$",
                             r"\bwhat (are|were) the tips\b", r"^(the )?tips\??$",
                             r"^tl;? ?dr\b",
                             r"\bmain (points|ideas|tips)\b", r"\bhow many tips\b",
                             r"\b(the|whole|full|entire) list\b",
                             r"\bshow me (the|all the) tips\b", r"\bwhat tips\b.{0,20}\bhave\b",
                             r"^(just )?(list|give me) (them|it|all|the list)\b",
                             r"\bwhat('s| is) the (article|piece) about\b",
                             r"\bwhat('s| is)? the gist\b", r"\b(short|quick) (version|summary)\b"
                             r"(?!.{0,25}\b(my|our|me|conversation|chat)\b)",
                             r"^(can you )?(summari[sz]e|sum up) (it|this|that)( for me)?"
                             r"( please| pls)?\??$", r"^overview\b",
                             r"\bwhat does (the whole|the) article (recommend|suggest|"
                             r"say overall|cover)\b(?!.{0,15}\b(about|for|on)\b)",
                             r"\b(all|list) (six|6|the six)\b")),
    ("article_topic", _rx(r"\bwhat (does|did) (it|the article|the piece|this article|the text) "
                          r"(say|said|suggest|recommend|mention)\b.{0,10}\b(about|on|for|"
                          r"regarding|re)\b",
                          r"\b(does|did) (it|the article|the piece|this article) (say|mention|"
                          r"talk about|cover|address|discuss|deal with|have anything|suggest)",
                          r"\banything (in (the|this) article |in there |in it )?(about|on) \w+",
                          r"\bis there (a|any) (tip|part|section|bit) (on|about|for)\b",
                          r"\bis there (anything|something|a tip) (in the article )?"
                          r"(about|on|for)\b",
                          r"\bwhat('s| is) (the article'?s?|its) (take|advice|view) on\b",
                          r"\bwhich tip (is |talks |covers |says )?(about|for|on)\b",
                          r"\bwhat (does|did) (it|the article) say (about|on)\b")),
    ("memory", _rx(r"\b(do|will|can|did) you (still )?(remember|recall|forget|keep track)",
                   r"\bremember (me|what i|our|last time|anything)", r"\bnext time\b.{0,20}"
                   r"\b(remember|know)", r"\bdo you have (a )?memory", r"\blast (time|session|"
                   r"conversation) (we|i)\b", r"\bwill you forget\b", r"\bhave you forgotten\b",
                   r"\b(do|will|can|would) (you|u) (still )?(know|recogni[sz]e) (me|who i am)",
                   r"\bif i come back\b.{0,25}\b(you|u)\b")),
    ("privacy", _rx(r"\b(is|are|will|does) (this|it|any of (this|it)|anything|my messages?|"
                    r"our (chat|conversation)|"
                    r"what i (say|type|write)|anything i (say|type)|the chat|this chat|"
                    r"this conversation|my data)\b.{0,20}\b(saved|stored|recorded|logged|kept|"
                    r"private|confidential|anonymous|secure|shared|sold|read|seen)",
                    r"\b(do|will|can) (you|anyone|someone|others|my (husband|wife|partner))\b"
                    r".{0,20}\b(save|store|record|log|keep|see|read|access)\b.{0,20}"
                    r"\b(this|messages?|chats?|conversations?|what i|data)",
                    r"\bwho can (see|read)\b", r"\bprivacy\b", r"\b(my )?data\b.{0,15}"
                    r"\b(saved|stored|used|kept)", r"\bconfidential\b",
                    r"\bclear (my|the) history\b",
                    r"\b(find out|know|see) (that )?i('ve| have)? (used|use|wrote|was on|been "
                    r"on|talked to) (this|you)", r"\bshow up in (my )?(browser |search )?history",
                    r"\bwhere do (my|the|these) (messages|chats|words) go\b",
                    r"\bwhat happens to (what i|my (messages|words|chats|data))",
                    r"\b(do|does) (you|anyone|someone) (log|record|review|monitor)\b",
                    r"\bare you (recording|logging|saving)\b",
                    r"\bstay(s)? between (us|you and me)\b", r"\bsell (my|our|the) data\b",
                    r"\b(checks|reads|looks through|goes through|monitors) my (phone|messages)\b",
                    r"\b(is|it'?s) (this|it) safe to (use|write|type|talk)\b")),
    ("about_assistant", _rx(r"\b(are|r) (you|u) (a |an )?(real|human|person|bot|robot|ai|machine|"
                            r"therapist|counsell?or|chatgpt|computer|doctor|psychologist|"
                            r"professional|qualified|licensed|program|actual)",
                            r"\b(who|what) (are|r) (you|u)\b", r"\bwhat (can|do) (you|u) do\b",
                            r"\bhow (do|does) (you|this|this thing) work\b",
                            r"\bis this (a )?(bot|ai|real person|human|therapist)",
                            r"\bam i (talking|chatting|speaking) (to|with)\b",
                            r"\bwho (made|built|created|programmed) you\b",
                            r"\bwhat (is|'s) this (app|site|thing|tool|chat)\b",
                            r"\bwhat (are you|is this) for\b", r"\bhow can you help\b",
                            r"\bcan you (actually )?help( me)?\??$",
                            r"\bare you (qualified|trained|any good)\b",
                            r"\bwhat('s| is) your name\b",
                            r"\bwhat (kind|sort) of (things|help|stuff|questions)\b.{0,20}"
                            r"\b(you|u)\b", r"\bwhat (can|could) (you|u) help (me )?with\b",
                            r"\b(is|are) (there|anyone|someone) (a |an )?(real|actual|live)? ?"
                            r"(person|human|people)\b.{0,20}\b(reading|there|typing|behind)",
                            r"\bhow do you (come up with|choose|decide|pick) (your|the|what)",
                            r"\bis (this|it) automated\b",
                            r"\bhow (are|is) (you|u|this) (any )?different from\b",
                            r"\b(can|do) (you|u) give (real|actual|proper) advice\b",
                            r"\bwhat (are|r) you able to do\b")),
)
_TIP_OR_ORDINAL = (_TIP_NUMBER, _TIP_ORDINAL)
_GREETING = re.compile(
    r"^(hi+|hello+|hey+|hiya|heya|howdy|yo|hallo|hola|bonjour|salut|ciao|"
    r"good (morning|afternoon|evening|day)|"
    r"greetings|hi there|hey there|morning|evening|sup|what'?s up|how are you|how r u)\b", re.I)
_THANKS = re.compile(
    r"\b(thanks?|thank (you|u)|thx|thnx|ty|tysm|cheers|ta|appreciate (it|that|you|this)|"
    r"much appreciated|that('s| is| was) (really |very |so )?(helpful|useful|lovely|kind|"
    r"good|great|nice)|(very|really|so) helpful|this helps|that helps|helped a lot|"
    r"you('ve| have) been (a |so |very |really )?(great|helpful|kind|big help|huge help|"
    r"help)|you('ve| have) helped( me)?( a lot| so much)?|many thanks)\b", re.I)
_GOODBYE = re.compile(
    r"\b(bye+|goodbye|good ?night|see (you|ya)|gotta go|got to go|have to go|need to go|"
    r"i'?ll go now|i'?m off|talk (to you )?later|ttyl|that'?s all( for now)?|take care|"
    r"i'?m done for (now|today)|signing off|logging off|later|laters|nite|night night|"
    r"gotta run|got to run|have to run|need to run|catch (you|ya) later|head(ing)? (off|out)|"
    r"(heading|going|off) to (bed|sleep)|(stop|leave it) (here|there)( for (now|today|tonight))?|"
    r"going to stop( now)?|i'?ll come back (later|another time|tomorrow)|gn|"
    r"(i'?ll |ill )?talk (to (you|u) )?(tomorrow|soon|later))\b", re.I)
_MORE = re.compile(
    r"^(what else|anything else|more|go on|keep going|continue|next|and\??|ok(ay)? and\??|"
    r"tell me more|say more|more please|other (ideas|tips|suggestions)|another (one|tip|idea)|"
    r"what other|something else|any (other|more) (ideas|tips|suggestions|advice)|"
    r"what more|give me (more|another|something (else|different))|more (ideas|tips|advice|"
    r"suggestions)|and then|what next|ok(ay)? what next|something different|next one)",
    re.I)
# What may follow "what else" and still ask only for more.
_MORE_REST = re.compile(
    r"^((other )?(things?|ways?|ideas?|tips?) )?((can|could|should|would|might|will) (i|we|you) "
    r"(try|do|suggest)|(can|could|would|might) (help|work)|(does|do|did) (it|the article|you) "
    r"(say|suggest|have|recommend|offer)|(is|are) there|(have|has) (you|it) got|you got|"
    r"(do )?you have|(is|are) (in )?(it|the article|there)|i (could|can|might) (try|do))?$",
    re.I)
_CORRECTION = re.compile(
    r"\b(not what i (meant|mean|asked|said|was asking)|you'?re (just |only )?repeating|"
    r"that'?s not what|you (already )?said "
    r"(that|this)( already| before)?|you('ve| have)? already (said|told|mentioned|suggested)|"
    r"already (said|told me|mentioned)|you'?re repeating|repeat(ing)? yourself|same thing "
    r"(again|as before)|(that|this|it) (doesn'?t|does not|didn'?t|did not|won'?t|isn'?t|"
    r"is not) (help|work|answer|apply|fit|make sense|relevant)|not (helpful|relevant|useful)|"
    r"you('re| are) not (listening|getting it|understanding)|you misunderstood|"
    r"misunderstood|that'?s (wrong|not right|not it|not the point|irrelevant|useless)|"
    r"i (already )?(tried|did|do) that( already)?|we('ve| have)? (already )?tried that|"
    r"didn'?t answer|not answering|doesn'?t answer|no,? i meant|i meant\b|useless|"
    r"that'?s not (really )?(what i|my) (question|problem|point)|keep saying|saying the same|"
    r"(same|that) (tip|one|thing) (again|already)|heard that( one)? (already|before)|"
    r"(doesn'?t|does not|won'?t|don'?t) (really )?(apply|fit|work for) (to )?(us|me|our)|"
    r"not getting (it|what|me)|misread|misunderstand|asked (something|about something) "
    r"(different|else)|we already do that|makes no sense|no no,? i mean|i meant something else)",
    re.I)
# A correction that leads the message ("that's not what I meant. I want ..."): however
# long what follows, the message corrects the last reply.
_CORRECTION_START = re.compile(
    r"^\W*(?:(?:no+|nope|sorry|well|hmm+|um+)\b[\s,.!]*)*(?:that'?s|thats|this is|it'?s|its)? ?"
    r"(?:not|n'?t) (?:really |quite )?(?:what i (?:meant|mean|asked|said|was asking)|"
    r"the point|my question|it)\b|^\W*(?:no+,? )?(?:i meant|you misunderstood|you'?ve "
    r"misunderstood|you'?re not (?:listening|getting it))\b", re.I)
_OBJECTION = re.compile(
    r"\b((he|she|they|partner|husband|wife|boyfriend|girlfriend|bf|gf)\s+"
    r"(won'?t|wont|will not|refuses?( to)?|doesn'?t want( to)?|does not want( to)?|"
    r"isn'?t willing( to)?|never wants( to)?|would never|don'?t want( to)?|says? no to|"
    r"hates?( the idea of)?|laughs? at|thinks?|says?)\s+.{0,25}\b(go|talk|therapy|"
    r"counsell?ing|counsell?or|therapist|open up|listen|discuss|try|couples|change|"
    r"help|engage|talking)\b|why should i (go first|be the one|make the first|always|have to|"
    r"do all)|why (is it|does it have to be|must it be) (always )?(up to|on) me\b|"
    r"\bup to me to (start|fix|go first|make|reach out)|why (is it|am i) always (me|the one)|"
    r"why do i have to|why me\b|"
    r"i shouldn'?t have to|it'?s (his|her|their) (fault|turn|job)|"
    r"(he|she|they)'?s? the one who (should|needs)|why do i (always )?have to|"
    r"why should i (make|put in) (the|an|all the|any) effort|why should i (bother|change|try)|"
    r"why is it always (on )?me|(he|she|they) (should|needs to) be the one|"
    r"(he|she|they) (always |just )?(changes the subject|shuts? (me out|down) when)|"
    r"(he|she|they) (doesn'?t|does not|don'?t) believe in (therapy|counsel\w*)|"
    r"can'?t (pay|afford) for (therapy|counsel\w*)|can'?t afford (therapy|counsel)|"
    r"therapy (is|costs) (too )?(expensive|much)|not (going|willing) to (go to )?therapy|"
    r"refuses? (therapy|counsel\w*|to talk|to go)|(therapy|counsell?ing) is for)", re.I)
_ANSWER = re.compile(
    r"^(yes|yeah|yep|yup|ya|sure|ok(ay)?|no|nope|nah|not really|not yet|maybe|perhaps|"
    r"probably|possibly|i guess|i think so|i don'?t think so|idk|i don'?t know|dunno|"
    r"not sure|no idea|i'?m not sure|i could|we could|i might|i'?ll try|i will|i would|"
    r"i'?d|i can|definitely|absolutely|of course|kind of|sort of|hmm+|i suppose|never|"
    r"sometimes|a (little|bit)|hard to say|honestly|it might|he might|she might|"
    r"they might|he would|she would|he'?d|she'?d|probably not|doubt it|i hope so|"
    r"i'?m scared to|i'?m afraid|too scared|it'?s hard|i think (i|we|he|she) (could|can|would|"
    r"might)|it'?s worth a try|worth a try|honestly,? (no|yes|not really)|tbh)\b", re.I)
_SITUATION_HINT = re.compile(
    r"\b(husband|wife|partner|boyfriend|girlfriend|marriage|relationship|we|us|our|he|she|"
    r"him|her|feel|felt|lonely|distant|argue|fight|kids|baby|work|sex|love)\b", re.I)
_QUESTION_WORD = re.compile(r"^(how|what|why|should|can|could|is|do|does|any|where|when)\b",
                            re.I)
# Memory and privacy are questions to the assistant: "do you remember", "is this saved";
# "I can't remember the last time we laughed" is about their own life.
_TO_ASSISTANT = re.compile(r"\b(you|u|ya|your|yours)\b|^\W*remember\b", re.I)
_ABOUT_THE_CHAT = re.compile(
    r"\b(you|u|your|this|it|chat|conversation|messages?|saved|stored|logged|recorded|"
    r"private|privacy|confidential|data|history|anonymous|here)\b", re.I)
# ...and asks what happens to it: "is it me? am I the problem here" is about themselves
_PRIVACY_WORD = re.compile(
    r"\b(sav\w*|stor\w*|record\w*|log\w*|kept|keep|private|privacy|confidential|data|"
    r"history|anonymous|secure|see|seen|read|delete\w*|eras\w*|track\w*|encrypt\w*|"
    r"shared?|sold|sell|remember\w*)\b", re.I)
# "Thanks, that helps. I'll talk to her tonight": thanks, then a plan of their own.
_PLAN = re.compile(
    r"^(so |and |then |ok(ay)? |now )?(i'?ll|ill|i will|i'?m going to|im going to|i'?m gonna|"
    r"im gonna|gonna|going to|i think i'?ll|i might|i'?m will|we'?ll|we will|we'?re going to|"
    r"i'?ll try|i'?m definitely going to|i plan to|i want to try)\b", re.I)
_YES_NO_ISH = re.compile(
    r"^(yes|yeah|yep|yup|ya|sure|ok(ay)?|no|nope|nah|not really|not yet|maybe|perhaps|"
    r"probably|possibly|i guess|i think so|i don'?t think so|idk|i don'?t know|dunno|"
    r"not sure|no idea|i'?m not sure|definitely|absolutely|of course|kind of|sort of|"
    r"never|sometimes|honestly)\b[\s,.!?]*(\w+[\s,.!?]*){0,3}$", re.I)


def greeting_back(text: str) -> str:
    """'Hi.' or 'Good morning.' when a message opens with a greeting, else ''."""
    m = _GREETING.match(text.strip())
    if m is None:
        return ""
    said = m.group(0).lower()
    if said.startswith("good "):
        return said.capitalize() + "."
    return "Hi there." if said[:1] in "hy" else "Hello."


def is_question(text: str) -> bool:
    """A message that asks something itself ("what would I even say to her")."""
    t = text.strip()
    return t.endswith("?") or bool(_QUESTION_WORD.match(
        re.sub(r"^((so|and|but|ok(ay)?|then|well|hmm+|um+)\b[\s,.!]*)+", "", t, flags=re.I)))


def is_bare_reply(text: str) -> bool:
    """'yes', 'no, not really', 'maybe?': a yes/no-ish reply, even with a question mark."""
    return bool(_YES_NO_ISH.match(text.strip()))


def thanks_with_plan(text: str) -> bool:
    """Thanks first, then what they mean to do: 'thank you, I'll try that tonight'."""
    m = _THANKS.search(text)
    if m is None or m.start() > 5 or len(_words(text)) > 24:
        return False
    sentences = re.split(r"(?<=[.!?])\s+|,\s*|\s+-\s+|—", text[m.end():])
    return any(_PLAN.match(x.strip()) for x in sentences if x.strip())


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _strip(text: str, pattern: re.Pattern[str]) -> str:
    """The text without the pattern's matches and the punctuation around them."""
    rest = pattern.sub(" ", text)
    return re.sub(r"[\s,.!?;:)(\-—–'\"]+", " ", rest).strip()


def _is_more(text: str) -> bool:
    """'What else', 'more please', 'what else does it say': only asking for something new."""
    plain = re.sub(r"\s+", " ", re.sub(r"[,.!?;:]+", " ", text)).strip()
    rest = _strip(plain, _MORE)
    rest_words = [w for w in _words(rest) if w.lower() not in _MORE_FILLER]
    return bool(_MORE.match(plain)) and len(_words(text)) <= SHORT and (
        not rest_words or bool(_MORE_REST.match(rest)))


def _tiny_act(text: str, state: ConversationState) -> str | None:
    """Greeting, thanks, goodbye, 'more' or an answer: short messages that say only that."""
    words = _words(text)
    if thanks_with_plan(text):
        return "thanks"
    if len(words) > SHORT + 4:
        return None
    if _is_more(text):
        return "more"
    thanks, bye = _THANKS.search(text), _GOODBYE.search(text)
    rest = _strip(_strip(_strip(text, _THANKS), _GOODBYE), _GREETING)
    rest_words = [w for w in _words(rest) if w.lower() not in _FILLER]
    if bye and bye.start() == 0 and len(words) <= SHORT:  # "gotta go, kids are up"
        return "goodbye"
    short_rest = len(rest_words) <= (4 if thanks and thanks.start() <= 5 else 3)
    if not rest_words or (short_rest and not _SITUATION_HINT.search(rest)):
        if bye:
            return "goodbye"
        if thanks:
            return "thanks"
        if _GREETING.match(text.strip()):
            return "greeting"
    if not _ANSWER.match(text.strip()) or text.rstrip().endswith("?") or is_question(text):
        return None
    # An answer needs something before it to answer: "idk" as a first message is not one.
    # A bare "maybe" answers whatever came before; a longer one needs a question before it.
    if not state.last_reply:
        return None
    if len(words) <= 3 or (state.last_question and len(words) <= SHORT + 4):
        return "answer"
    return None


_MORE_FILLER = frozenset("please pls plz then though ideas tips idea tip maybe thanks ok okay "
                         "here there on".split())
_FILLER = frozenset("so much very a lot again for it this that all you again now okay ok "
                    "and really i am im i'm will try have nice day night great good".split())


def _addressed(act: str, text: str) -> bool:
    """Memory and privacy only when the message speaks to the assistant or the chat."""
    if act == "memory":
        return bool(_TO_ASSISTANT.search(text))
    if act == "privacy":
        return bool(_ABOUT_THE_CHAT.search(text) and _PRIVACY_WORD.search(text))
    return True


def _is_correction(text: str, state: ConversationState) -> bool:
    """'That's not what I meant', 'you said that already', and, after a reply, 'I did try
    telling him' or 'I have friends, that's not it'."""
    n = len(_words(text))
    if state.last_reply and (_TRIED_IT.search(text) or _SELF_FRIENDS.search(text)
                             or cant_do_tips(text)) and n <= 30 and not is_question(text):
        return True
    return bool(_CORRECTION.search(text)) and (
        n <= 20 or (bool(_CORRECTION_START.search(text)) and n <= 60))


def pattern_act(text: str, state: ConversationState) -> str | None:
    """The act the patterns see in a message, or None when they see nothing certain."""
    if is_other_language(text):
        return "other_language"
    if _is_more(text) and not any(rx.search(text) for rx in _TIP_OR_ORDINAL):
        return "more"  # "what else does it say": before the article's patterns
    for act, rx in _PATTERNS[:2]:  # recap, source: before "summarise the article"
        if rx.search(text):
            return act
    if any(rx.search(text) for rx in _TIP_OR_ORDINAL) and len(_words(text)) <= 14:
        return "article_tip"
    for act, rx in _PATTERNS[2:]:
        if rx.search(text) and (act not in ("privacy", "memory", "about_assistant")
                                or len(_words(text)) <= 20) and (
                                    act != "memory" or _addressed(act, text)):
            return act
    if YOURE_SAYING.search(text) and state.last_reply and len(_words(text)) <= 45:
        return "objection"  # "so you're saying I shouldn't rely on her?": a tip read as unfair
    if _is_correction(text, state):
        return "correction"
    tiny = _tiny_act(text, state)
    if tiny:
        return tiny
    if _OBJECTION.search(text) and len(_words(text)) <= 30:
        return "objection"
    return None


class ActDetector:
    """Patterns for the obvious, nearest labelled examples for the rest."""

    def __init__(self, embedder: Embeds,
                 examples: Sequence[tuple[str, str]] | None = None) -> None:
        examples = list(examples if examples is not None else load_act_examples())
        self.labels = [a for a, _ in examples]
        vecs = embedder.embed_documents([t for _, t in examples])
        self.vectors = np.asarray(vecs, dtype=np.float32)

    def detect(self, text: str, vec: Sequence[float], state: ConversationState) -> str:
        """The act of one message, from its (normalised) query embedding and the state."""
        act = pattern_act(text, state)
        if act:
            return act
        act = self.nearest(vec, state)
        if not _addressed(act, text):
            return "situation"
        if act == "answer" and is_question(text) and not is_bare_reply(text):
            return "situation"  # a new question, not an answer to the assistant's
        return act

    def nearest(self, vec: Sequence[float], state: ConversationState) -> str:
        """The act of the nearest labelled examples, or 'situation' when none is close."""
        sims = self.vectors @ np.asarray(vec, dtype=np.float32)
        top = np.argsort(-sims)[:_KNN_K]
        best = float(sims[top[0]])
        label = self.labels[int(top[0])]
        if best < KNN_LOOSE_MIN or label == "situation":
            return "situation"
        situ = max((float(sims[i]) for i, a in enumerate(self.labels) if a == "situation"),
                   default=-1.0)
        margin = KNN_MARGIN if best >= KNN_MIN else KNN_LOOSE_MARGIN
        if best - situ < margin:
            return "situation"
        if label == "answer" and not state.last_question:
            return "situation"
        return label


_TOPIC_FRAME = re.compile(
    r"^.*?\b(?:say|says|said|mention|mentions|talk|talks|cover|covers|suggest|recommend|"
    r"anything|something|take|advice|view)\b(?:\s+(?:anything|something))?\s*"
    r"(?:about|on|for|regarding|re)?\s*", re.I)


def topic_of(text: str) -> str:
    """The subject of 'what does it say about X': X (the whole text if there is no frame)."""
    return _TOPIC_FRAME.sub("", text).strip(" ?.!") or text


def tip_reference(text: str, state: ConversationState, tips: Sequence[str]) -> list[str]:
    """Sections a message points at: 'tip 3', 'number one', 'the first tip', 'the last one'.

    Numbers name the article's own tips ('tip #1' is tip-1). 'The first tip' is the first
    in the article (tip-6); 'the second one' counts along the last reply's tips when it
    listed some, else along the article. `tips` is the article's tips in reading order.
    """
    out: list[str] = []
    for ref in _TIP_NUMBER.finditer(text):
        raw = (ref.group(1) or ref.group(2) or "").lower()
        n = _NUM_WORDS.get(raw) or (int(raw) if raw.isdigit() else 0)
        sid = f"tip-{n}"
        if sid not in out:
            out.append(sid)
    if out:
        return out
    m = _TIP_ORDINAL.search(text)
    if m:
        n = _ORDINAL_WORDS[m.group(1).lower()]
        listed = [s for s in state.last_cited if s.startswith("tip-")]
        order = listed if m.group(2).lower() == "one" and len(listed) >= 2 else list(tips)
        if n == -1:
            out.append(order[-1])
        elif n <= len(order):
            out.append(order[n - 1])
        else:
            out.append(f"tip-{n}")  # out of range: the caller says how many there are
    return out


__all__ = [
    "ACTS",
    "WANTS_TO_RECEIVE",
    "WRITTEN_ACTS",
    "ActDetector",
    "ConversationState",
    "Embeds",
    "Theme",
    "build_state",
    "cant_do_tips",
    "clarified_tip",
    "fill",
    "greeting_back",
    "is_bare_reply",
    "is_other_language",
    "is_question",
    "load_themes",
    "named_tip",
    "partner_of",
    "pattern_act",
    "thanks_with_plan",
    "told_part",
    "in_second_person",
    "themes_in",
    "tip_reference",
    "topic_of",
    "tried_tips",
    "wanted_tips",
]
