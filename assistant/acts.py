"""Replies for what a message is doing when it is not the person's situation.

Greetings, thanks, questions about the assistant or the article, "what else", a
correction, an answer to the assistant's own question, an objection: each gets written
words from `data/replies.toml` and, where the article has something to say, its own
sentences, chosen for the situation and never repeated from an earlier reply.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from .dialogue import (
    ConversationState,
    fill,
    in_second_person,
    is_other_language,
    thanks_with_plan,
    tip_reference,
    wanted_tips,
)
from .respond import (
    _JUST_ONE,
    _SUPPORT,
    Composed,
    Limits,
    OfflineResponder,
    Pick,
    frame,
    join,
    section_label,
    short_title,
)

# Acts that name what they want from the article: what they ruled out earlier still holds.
# Tip 1's reasons for going first (the openings of its sentences), best first: not its
# slogan "Don't wait for your spouse to make the first move", which they just pushed back on.
_WHY_ME_QUOTES = ("But true change", "Owning up", "One small act")
RECAP_TURNS = 4  # the latest messages that told something, in a recap
_ASKED_BY_NAME = frozenset({"article_tip", "article_overview", "article_topic"})
# Sections for "what else" when no theme orders them: the everyday tips first.
DEFAULT_ORDER = ("tip-4", "tip-3", "tip-2", "tip-1", "tip-5", "tip-6")
_YES = re.compile(r"^(yes|yeah|yep|yup|ya|sure|ok(ay)?|definitely|absolutely|of course|"
                  r"i think so|i will|i'?ll try|i can|probably|i hope so)\b", re.I)
_NO = re.compile(r"^(no|nope|nah|not really|not yet|never|i don'?t think so|probably not|"
                 r"doubt it|i can'?t|too scared|i'?m scared|i'?m afraid)\b", re.I)
_UNSURE = re.compile(r"^(maybe|perhaps|possibly|i guess|idk|i don'?t know|dunno|not sure|"
                     r"no idea|i'?m not sure|kind of|sort of|hmm+|i suppose|hard to say|"
                     r"sometimes|a (little|bit))\b", re.I)
_THERAPY = re.compile(r"\b(therap\w*|counsel\w*|session|couples? (help|coach))\b", re.I)
_FIRST = re.compile(r"\b(first|why should i|why me|why do i|always me|always on me|up to me|"
                    r"my job|the one who|(his|her|their) (fault|turn|job)|shouldn'?t have to|"
                    r"shouldn'?t (he|she|they)|make an effort too|(he|she|they) should)\b",
                    re.I)
# The partner turned therapy down (the article's case may still help the person): not
# "we tried it" or "I don't want to go back", which the person has already decided.
_PARTNER_REFUSES = re.compile(
    r"\b(he|she|they|husband|wife|partner|boyfriend|girlfriend|bf|gf)\b[^.!?]{0,20}\b(refus\w*|"
    r"won'?t|wont|will not|doesn'?t want|does not want|isn'?t willing|would never|hates?|"
    r"says?|said|laughs?|thinks?|doesn'?t believe|calls?)\b", re.I)
_REPEAT = re.compile(r"\b(already|again|repeat|same thing)\b", re.I)
_MEANT = re.compile(r"\b(meant|mean|asked|asking|misunderstood|not what|question)\b", re.I)
# What a correction says beyond "that's not what I meant": their situation, if long enough.
_CORRECTION_HEAD = re.compile(
    r"^\W*(no+|nope|nah|sorry|well|ok(ay)?|hmm+)?[\s,.!]*(that'?s|thats|it'?s|its|this is)?\s*"
    r"(not|n'?t) (really )?(what i (meant|mean|asked|said|was asking)|it|the point|right)"
    r"[\s,.;:!—-]*|^\W*(no+|nope),? i meant[\s,.;:!—-]*|^\W*you misunderstood[\s,.;:!—-]*",
    re.I)
_CONTENT_WORDS = 5


def _says_more(message: str) -> bool:
    """True when a correction goes on to say what the situation is."""
    m = _CORRECTION_HEAD.search(message)
    if m is None:
        return False
    rest = message[m.end():]
    return len(re.findall(r"[A-Za-z']+", rest)) >= _CONTENT_WORDS


_LANGS = {
    "es": re.compile(r"\b(el|la|que|mi|esposo|esposa|marido|novio|novia|pero|habla|estoy|"
                     r"siento|muy|nada|con|por|para)\b", re.I),
    "fr": re.compile(r"\b(je|il|elle|mon|ma|mari|femme|pas|avec|est|suis|nous|parle)\b", re.I),
    "de": re.compile(r"\b(ich|er|sie|mein|meine|mann|frau|nicht|und|ist|mit|spricht)\b", re.I),
    "pt": re.compile(r"\b(eu|ele|ela|meu|minha|marido|não|com|uma|fala|namorado)\b", re.I),
}


class ActResponder:
    """Written replies for the acts, with the article's words where they help."""

    def __init__(self, offline: OfflineResponder) -> None:
        self.offline = offline
        self.bank = offline.bank
        self.r = offline.replies
        self.a = offline.replies["acts"]
        self._handlers: dict[str, Callable[..., Composed]] = {
            "greeting": self.greeting, "thanks": self.thanks,
            "goodbye": self._written("goodbye"), "privacy": self._written("privacy"),
            "about_assistant": self._written("about_assistant"),
            "article_source": self._written("article_source"), "memory": self.memory,
            "recap": self.recap, "article_overview": self.overview,
            "article_tip": self.tip, "more": self.more, "correction": self.correction,
            "answer": self.answer, "objection": self.objection,
            "other_language": self.other_language,
        }

    def handles(self, act: str) -> bool:
        """True when this act is answered here rather than from retrieved passages."""
        return act in self._handlers

    def reply(self, act: str, message: str, state: ConversationState, sims: np.ndarray,
              limits: Limits) -> Composed:
        """The reply for one act (`sims`: the message's similarity to every sentence).

        What the person ruled out ("he already has friends", "therapy's out") is left out
        of every reply except one that asks for it by name ("what is tip 6").
        """
        narrowed = limits if act in _ASKED_BY_NAME else \
            limits.without(state.rejected, self.bank.sections)
        composed = self._handlers[act](message, state, sims, narrowed)
        return frame(composed, limits)

    # -- written replies

    def _written(self, key: str) -> Callable[..., Composed]:
        def handler(message: str, state: ConversationState, *_: object) -> Composed:
            return Composed(state.fresh(self.a[key], message))

        return handler

    def thanks(self, message: str, state: ConversationState, *_: object) -> Composed:
        """Thanks; with a plan after it ("I'll talk to her tonight"), a warm word for it."""
        key = "thanks_plan" if thanks_with_plan(message) else "thanks"
        return Composed(state.fresh(self.a[key], message))

    def greeting(self, message: str, state: ConversationState, *_: object) -> Composed:
        key = "greeting_again" if state.turns else "greeting"
        return Composed(state.fresh(self.a[key], message))

    def memory(self, message: str, state: ConversationState, *_: object) -> Composed:
        if not state.themes:
            return Composed(state.fresh(self.a["memory_empty"], message))
        options = [o.replace("{situation}", state.situation) for o in self.a["memory"]]
        return Composed(state.fresh(options, message))

    def recap(self, message: str, state: ConversationState, *_: object) -> Composed:
        """What the person told, in full sentences: their partner, their situation, tips seen."""
        if not state.situation_texts:
            return Composed(self.a["recap_empty"].format(**state.words))
        # Their own facts, told back in the second person: never a theme's template.
        told = [in_second_person(t) for t in state.situation_texts[-RECAP_TURNS:]]
        paras = [self.a["recap"], " ".join(told)]
        tips = [short_title(self.bank.titles[s]).lower() for s in state.cited
                if s.startswith("tip-")]
        if tips:
            titles = ", ".join(f'"{t}"' for t in tips[:-1]) + \
                (f' and "{tips[-1]}"' if len(tips) > 1 else f'"{tips[-1]}"')
            paras.append(self.a["recap_tips"].format(titles=titles))
        paras.append(self.a["recap_close"])
        return Composed(join(paras))

    def other_language(self, message: str, *_: object) -> Composed:
        """Say kindly, in English and where cheap in their language, that it reads English."""
        paras = [self.a["other_language"]]
        hits = {lang: len(rx.findall(message)) for lang, rx in _LANGS.items()}
        lang = max(hits, key=lambda k: hits[k])
        if is_other_language(message) and hits[lang] >= 2:
            paras.append(self.a[f"other_language_{lang}"])
        return Composed(join(paras))

    # -- about the article

    def overview(self, message: str, state: ConversationState, sims: np.ndarray,
                 limits: Limits) -> Composed:
        """The six tips, counted down as the article does."""
        lines = [f"{sid.split('-')[1]}. **{short_title(self.bank.titles[sid])}**"
                 for sid in self.offline.tips]
        return Composed(join([self.a["overview_lead"], "\n".join(lines),
                              self.a["overview_close"]]))

    def tip(self, message: str, state: ConversationState, sims: np.ndarray,
            limits: Limits) -> Composed:
        """The tip asked for ('tip 3', 'the first tip', 'the last one'), in its words."""
        refs = tip_reference(message, state, self.offline.tips) or state.last_cited[:1]
        refs = [s for s in refs if s in self.bank.sections]
        if not refs:
            lines = "\n".join(f"{s.split('-')[1]}. **{short_title(self.bank.titles[s])}**"
                              for s in self.offline.tips)
            return Composed(join([self.a["tip_unknown"], lines, self.a["tip_invite"]]))
        paras: list[str] = []
        picks: list[Pick] = []
        for sid in refs[:2]:
            if not limits.ok(sid):
                continue
            pick = self.offline.section_pick(sid, sims, state, n=2, allow_repeat=True)
            if pick is None:
                continue
            title = short_title(pick.title)
            label = section_label(sid)
            lead = self.r["tips"]["more"].format(title=title, Label=label[:1].upper() + label[1:]) \
                if sid in state.cited else \
                state.fresh(self.a["tip_lead"], message).format(title=title, label=label)
            quotes = "\" … \"".join(pick.quotes())
            paras += [lead, f"\"{quotes}\" *({section_label(sid)})*"]
            picks.append(pick)
        if not picks:
            return Composed(self.r["sticky"]["abuse_question"])
        paras.append(self.offline.closer(picks[-1], state, message, len(picks)))
        return Composed(join(paras), self.offline.citations(picks), focus=tuple(refs))

    def _therapy_extra(self, first: Pick, state: ConversationState, limits: Limits
                       ) -> list[str]:
        """The directory (once per conversation) or a pointer, after tip 6's words."""
        if first.section_id != self.offline.therapy_section or not limits.therapy_note:
            return []
        if state.directory_shown:
            return [self.r["therapy"]["pointer"]]
        return [limits.therapy_note.strip()]

    # -- moving the conversation on

    def _fresh_picks(self, state: ConversationState, sims: np.ndarray, limits: Limits,
                     n: int, prefer: tuple[str, ...] = ()) -> list[Pick]:
        """Up to `n` sections not quoted yet, the situation's first; else unquoted lines."""
        themed = [s for t in reversed(state.themes) for s in t.sections]
        order = list(dict.fromkeys([*prefer, *themed, *DEFAULT_ORDER]))
        order = [s for s in order if limits.ok(s) and s in self.bank.sections]
        picks: list[Pick] = []
        for group in ([s for s in order if s not in state.cited], order):
            for sid in group:
                if len(picks) >= n or any(p.section_id == sid for p in picks):
                    continue
                pick = self.offline.section_pick(sid, sims, state)
                if pick is not None:
                    picks.append(pick)
        return picks

    def _with_tips(self, head: list[str], picks: list[Pick], state: ConversationState,
                   message: str, limits: Limits, close: str = "") -> Composed:
        paras = [*head, *(self.offline.tip_line(p) for p in picks)]
        if picks:
            paras += self._therapy_extra(picks[0], state, limits)
        paras.append(close or self.offline.closer(self.offline.closing_pick(picks, state),
                                                  state, message, len(picks)))
        return Composed(join(paras), self.offline.citations(picks))

    def more(self, message: str, state: ConversationState, sims: np.ndarray,
             limits: Limits) -> Composed:
        """'What else': something the conversation hasn't had yet ("one thing": one)."""
        picks = self._fresh_picks(state, sims, limits, 1 if _JUST_ONE.search(message) else 2)
        if not picks:
            return Composed(self.a["more_done"])
        lead = self.a["more_lead" if len(picks) > 1 else "more_lead_one"]
        return self._with_tips([state.fresh(lead, message)], picks, state, message, limits)

    def correction(self, message: str, state: ConversationState, sims: np.ndarray,
                   limits: Limits) -> Composed:
        """A misunderstanding asks them to say more; a repeat or a miss gets something new.

        A correction that says what they meant ("we can't do date nights, no babysitter")
        is their situation: a different tip, fitted to what they said.
        """
        push = self.offline.pushback_line(message, state) \
            if state.pushback in ("friends", "friends_new", "therapy", "first", "tried_it",
                                  "tried_flat", "self_friends", "cant") else ""
        theme = next((t for t in state.current_themes if t.acknowledge), None)
        want, not_asked = wanted_tips(message)
        if not want and state.wants_to_receive and "tip-4" not in state.rejected:
            want = "tip-4"  # "I just want him to notice me": saying what they need
        if _says_more(message) or push or theme or want:
            picks = self._fitting_picks(state, sims, limits, want, not_asked, message)
            if picks:
                head = push or state.fresh(self.a["correction_content"], message)
                if theme is not None and not push:
                    # "He works nights": take in what it changes, then what works around it.
                    head = " ".join((state.fresh(theme.acknowledge, message),
                                     state.fresh(self.a["correction_constraint"], message)))
                return self._with_tips([head], picks, state, message, limits)
        if _MEANT.search(message) and not _REPEAT.search(message):
            offer = self.a["correction_offer"].format(sections=self.offline.offer(limits))
            return Composed(join([state.fresh(self.a["correction_meant"], message), offer]))
        key = "correction_repeat" if _REPEAT.search(message) else "correction_unhelpful"
        picks = self._fresh_picks(state, sims, limits, 1)
        if not picks:
            return Composed(self.a["more_done"])
        return self._with_tips([state.fresh(self.a[key], message)], picks, state, message,
                               limits)

    def _fitting_picks(self, state: ConversationState, sims: np.ndarray, limits: Limits,
                       want: str = "", not_asked: str = "", message: str = "") -> list[Pick]:
        """The best-fitting tip the last reply didn't quote, by what the message says: the
        tip their words ask for first ("I want time for us"), never one they set aside."""
        if want and want != not_asked and limits.ok(want):
            pick = self.offline.section_pick(want, sims, state)
            if pick is not None:
                return [pick]
        # the friends tip only when they speak of support: "I want him to notice me" is
        # about the two of them
        friends_ok = bool(_SUPPORT.search(message))
        picks = [p for p in (self.offline.section_pick(s, sims, state)
                             for s in self.offline.tips
                             if s not in state.last_cited and limits.ok(s) and s != not_asked
                             and s != self.offline.therapy_section
                             and (s != "tip-5" or friends_ok)) if p is not None]
        picks.sort(key=lambda p: (p.section_id in state.cited, -p.score))
        return picks[:1]

    def answer(self, message: str, state: ConversationState, sims: np.ndarray,
               limits: Limits) -> Composed:
        """An answer to the assistant's own question, read against the question it answers."""
        text = message.strip()
        kind = "no" if _NO.match(text) else "unsure" if _UNSURE.match(text) else \
            "yes" if _YES.match(text) else ""
        asked = self._asked(state)
        if asked is not None and kind:
            if kind == "yes" and asked.get("act_yes"):
                return self._handlers[asked["act_yes"]](message, state, sims, limits)
            options = [fill(o, state.words) for o in asked.get(kind, [])]
            if options and kind in ("no", "unsure") and asked.get("smaller"):
                picks = self._fresh_picks(state, sims, limits, 1, prefer=("tip-2", "tip-1"))
                head = [state.fresh(options, message), *([self.a["answer_follow"]] if picks
                                                         else [])]
                return self._with_tips(head, picks, state, message, limits,
                                       state.fresh(self.a["answer_close_no"], message))
            if options:
                return Composed(state.fresh(options, message))
        return self._generic_answer(message, state, sims, limits)

    def _asked(self, state: ConversationState) -> dict | None:
        """The written answers for the question the last reply ended on, if any fits."""
        if not state.last_question:
            return None
        return next((q for q in self.r.get("answers", [])
                     if re.search(q["question"], state.last_question, re.I)), None)

    def _generic_answer(self, message: str, state: ConversationState, sims: np.ndarray,
                        limits: Limits) -> Composed:
        """Encourage, or offer a smaller step, when the question asked has no written answers."""
        text = message.strip()
        if _NO.match(text) or _UNSURE.match(text):
            key = "answer_no" if _NO.match(text) else "answer_unsure"
            picks = self._fresh_picks(state, sims, limits, 1, prefer=("tip-2", "tip-1"))
            head = [state.fresh(self.a[key], message)]
            if picks:
                head.append(self.a["answer_follow"])
            return self._with_tips(head, picks, state, message, limits,
                                   state.fresh(self.a["answer_close_no"], message))
        key = "answer_yes" if _YES.match(text) else "answer_idea"
        return Composed(join([state.fresh(self.a[key], message),
                              state.fresh(self.a["answer_close_yes"], message)]))

    def objection(self, message: str, state: ConversationState, sims: np.ndarray,
                  limits: Limits) -> Composed:
        """Therapy refused: the article's case, and what one can do alone (tips 1 and 5)."""
        if _THERAPY.search(message):
            return self._therapy_refused(message, state, sims, limits)
        feeling = self.offline.feeling(message, state)
        if state.clarify:
            return self._clarify(message, state, sims, limits, feeling)
        if _FIRST.search(message):
            return self._why_me(message, state, sims, limits, feeling)
        head = " ".join(x for x in (self.offline.pushback_line(message, state)
                                    or state.fresh(self.a["objection_talk"], message),
                                    feeling) if x)
        picks = [p for p in (self.offline.section_pick(s, sims, state)
                             for s in ("tip-4", "tip-1") if limits.ok(s)) if p is not None]
        if not picks:
            picks = self._fresh_picks(state, sims, limits, 1)
        return self._with_tips([head], picks, state, message, limits,
                               state.fresh(self.a["objection_close"], message))

    def _clarify(self, message: str, state: ConversationState, sims: np.ndarray,
                 limits: Limits, feeling: str) -> Composed:
        """'So you're saying I shouldn't rely on her?': what that tip means (not blame), and
        something different that fits; the tip they read as unfair is not offered again."""
        lines = self.r.get("clarify", {}).get(state.clarify, [])
        head = " ".join(x for x in (feeling, state.fresh(lines, message) if lines else "")
                        if x)
        prefer = ("tip-4", "tip-5", "tip-1", "tip-2", "tip-3")
        picks = [p for p in (self.offline.section_pick(s, sims, state) for s in prefer
                             if limits.ok(s) and s not in state.last_cited) if p is not None][:1]
        if not picks:
            picks = self._fresh_picks(state, sims, limits, 1)
        paras = [head]
        if picks:
            paras += [state.fresh(self.a["clarify_lead"], message),
                      self.offline.tip_line(picks[0])]
        paras.append(self.offline.closer(picks[0], state, message) if picks and state.worn
                     else state.fresh(self.a["objection_close"], message))
        return Composed(join(paras), self.offline.citations(picks))

    def _why_me(self, message: str, state: ConversationState, sims: np.ndarray,
                limits: Limits, feeling: str) -> Composed:
        """'Why should I be the one to start?': the article's reasoning (tip 1), not its
        slogan, and that wanting effort from the partner too is fair."""
        head = " ".join(x for x in (state.fresh(self.a["objection_first"], message), feeling)
                        if x)
        pick = self._reasoning(state) if limits.ok("tip-1") else None
        if pick is None:
            picks = self._fresh_picks(state, sims, limits, 1)
            return self._with_tips([head], picks, state, message, limits,
                                   state.fresh(self.a["objection_close"], message))
        paras = [head, self.a["objection_first_why"], self.offline.tip_line(pick),
                 state.fresh([fill(o, state.words) for o in self.a["objection_first_fair"]],
                             message),
                 state.fresh(self.a["objection_close"], message)]
        return Composed(join(paras), self.offline.citations([pick]))

    def _reasoning(self, state: ConversationState) -> Pick | None:
        """Tip 1's reasoning for going first, in its words: two sentences not quoted yet."""
        quotes: list[Pick] = []
        for start in _WHY_ME_QUOTES:
            pick = self.offline._preferred_pick("tip-1", start, state)
            if pick is not None and not any(pick.quote in q.quote or q.quote in pick.quote
                                            for q in quotes):
                quotes.append(pick)
            if len(quotes) == 2:
                break
        if not quotes:
            return None
        quotes.sort(key=lambda p: p.first)
        first = quotes[0]
        return Pick(first.section_id, first.title, first.quote, 1.0, first.first,
                    tuple(q.quote for q in quotes[1:]))

    def _therapy_refused(self, message: str, state: ConversationState, sims: np.ndarray,
                         limits: Limits) -> Composed:
        """The partner won't go: the article's case (once). They tried it, or decided
        against it: that is taken in, and the reply moves to what they can do alone."""
        partner = bool(_PARTNER_REFUSES.search(message)) and \
            not re.search(r"\b(tried|did|done|been to|went|had|stopped|quit)\b", message, re.I)
        feeling = self.offline.feeling(message, state)
        head = state.fresh(self.a["objection_therapy"], message) if partner else \
            state.fresh([fill(o, state.words) for o in self.r["pushback"]["therapy"]], message)
        paras = [" ".join(x for x in (head, feeling, self.offline.detail(message, state)) if x)]
        picks: list[Pick] = []
        case = self._case_for_therapy(state, self._unruled(limits)) if partner else None
        if case is not None:
            paras += [self.a["objection_therapy_case"], self.offline.tip_line(case)]
            picks.append(case)
        alone = [p for p in (self.offline.section_pick(s, sims, state, allow_repeat=True)
                             for s in ("tip-1", "tip-5") if limits.ok(s)) if p is not None]
        if alone:
            paras.append(self.a["objection_alone" if partner else "objection_without"])
            paras += [self.offline.tip_line(p) for p in alone]
        if partner:
            paras.append(self.a["objection_individual"])
        if state.directory_shown and partner:
            paras.append(self.r["therapy"]["pointer"])
        paras.append(state.fresh(self.a["objection_close"], message))
        return Composed(join(paras), self.offline.citations([*picks, *alone]))

    def _unruled(self, limits: Limits) -> Limits:
        """The limits with tip 6 back in, for the article's case when the partner refuses
        (the safety policy's own limits still hold)."""
        if limits.allowed is None or limits.abuse or not self.offline.therapy_section:
            return limits
        return replace(limits, allowed=limits.allowed | {self.offline.therapy_section})

    def _case_for_therapy(self, state: ConversationState, limits: Limits) -> Pick | None:
        """'It's not merely for crisis couples… relationship upkeep' (tip 6), once."""
        sid = self.offline.therapy_section
        if not sid or not limits.ok(sid):
            return None
        idx = self.bank.in_section(sid)
        start = next((i for i in idx if self.bank.sentences[i].text.startswith("It’s not "
                                                                              "merely")), None)
        if start is None or start + 1 not in idx:
            return None
        quote = self.bank.span(start, start + 1)
        if state.used(quote):
            return None
        return Pick(sid, self.bank.titles[sid], quote, 1.0, start)


__all__ = ["ActResponder"]
