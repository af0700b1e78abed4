"""The Assistant: the one object the CLI, the Streamlit page and the evals talk to.

One turn: clean the text -> embed it once -> triage (shares the embedding) -> a safety
route is answered at once, never waiting on an LLM -> retrieve -> respond (offline, or
the LLM with the offline reply as fallback) -> verify. History is kept by the caller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .acts import ActResponder
from .config import Settings
from .dialogue import WRITTEN_ACTS, ActDetector, ConversationState, build_state, topic_of
from .errors import LLMError
from .protocols import LLMResponder, PassageRetriever, Triager
from .respond import (
    Citation,
    Composed,
    Limits,
    OfflineResponder,
    SentenceBank,
    load_replies,
)
from .safety import SAFETY_ROUTES, most_severe, turn_policy
from .text import clean_user_text
from .verify import Verdict, Verifier

log = logging.getLogger("reconnect")
# Longest message the triage reads; past this, a message is cut (with a notice).
TRIAGE_MAX_CHARS = 20_000

# The offline responder looks a little wider than the LLM prompt: it quotes sentences,
# and a sixth passage can hold the sentence that fits best.
OFFLINE_K = 6
# How much of "what does the article say about" to take off a topic question's embedding
# (dev questions in evals/data/conversation_dev.jsonl: 8/10 -> 9/10 find their tip).
TOPIC_FRAMING = 0.6
STAGES = ("triage", "embed", "retrieve", "respond", "verify", "total")


@dataclass
class Reply:
    """Everything a front end shows for one turn."""

    text: str
    route: str
    mode: str = "offline"  # offline | llm | fallback
    citations: list[Citation] = field(default_factory=list)
    resources: list[Any] = field(default_factory=list)
    notice: str | None = None
    verification: str | None = None
    sticky_route: str | None = None
    confidence: float = 0.0
    reasons: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    retrieved: list[str] = field(default_factory=list)  # sections the responder was given
    act: str = "situation"  # what the message was doing (dialogue.ACTS)

    def to_dict(self) -> dict[str, Any]:
        """The `assistant ask --json` shape (DESIGN.md)."""
        return {
            "text": self.text,
            "route": self.route,
            "mode": self.mode,
            "act": self.act,
            "citations": [c.to_dict() for c in self.citations],
            "resources": [_resource_dict(r) for r in self.resources],
            "notice": self.notice,
            "verification": self.verification,
            "sticky_route": self.sticky_route,
            "confidence": round(float(self.confidence), 4),
            "reasons": list(self.reasons),
            "timings": {k: round(v, 2) for k, v in self.timings.items()},
            "retrieved": list(self.retrieved),
        }


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer's text, to show as it arrives."""

    text: str


@dataclass(frozen=True)
class Final:
    """The last event of a turn. Its reply's text is the final word: show it once it comes."""

    reply: Reply


StreamEvent = TextDelta | Final


def _resource_dict(r: Any) -> dict[str, Any]:
    if hasattr(r, "to_dict"):
        return r.to_dict()
    return {"name": getattr(r, "name", str(r)), "contact": getattr(r, "contact", "")}


def clean_history(history: Sequence[dict] | None) -> list[dict]:
    """Well-formed turns only, cleaned like messages; anything else is skipped."""
    out: list[dict] = []
    for h in history or []:
        if not isinstance(h, dict) or h.get("role") not in ("user", "assistant"):
            continue
        content = h.get("content")
        if not isinstance(content, str):
            continue
        try:
            text, _ = clean_user_text(content, 8000)
        except Exception:  # noqa: BLE001 - an empty old turn is just skipped
            continue
        turn = {"role": h["role"], "content": text}
        if isinstance(h.get("route"), str):
            turn["route"] = h["route"]
        out.append(turn)
    return out


class Assistant:
    """Answers one message at a time; dependencies are passed in (tests) or built."""

    def __init__(self, settings: Settings, *, retriever: PassageRetriever, triage: Triager,
                 llm: LLMResponder | None = None, bank: SentenceBank | None = None) -> None:
        self.settings = settings
        self.retriever = retriever
        self.triage = triage
        self.llm = llm
        self.embedder = retriever.embedder
        self.bank = bank or SentenceBank(retriever.articles, self.embedder)
        replies = load_replies()
        self.offline = OfflineResponder(
            self.bank, replies, probe_vec=self.embedder.embed_query(replies["therapy"]["probe"]))
        self.acts = ActResponder(self.offline)
        self.detector = ActDetector(self.embedder)
        # "What does the article say about X": its framing, taken off the query's embedding
        # so the search looks for X (no second embedding per turn).
        self._framing = np.asarray(
            self.embedder.embed_query(replies["acts"]["topic_framing"]), dtype=np.float32)
        self.verifier = Verifier(self.bank, self.embedder)
        self.replies = load_replies()
        self._pool: Any = None  # threads for early condense calls, made on first use

    @classmethod
    def from_settings(cls, settings: Settings, *, progress: bool = False) -> Assistant:
        """Build the retriever, triage and (when configured) the LLM from settings."""
        from .retrieval import build_retriever
        from .triage import load_triage

        retriever = build_retriever(settings, progress=progress)
        triage = load_triage(settings, embedder=retriever.embedder)
        llm = None
        if settings.llm_enabled:
            from .llm import LLMResponder

            llm = LLMResponder(settings, retriever)
        assistant = cls(settings, retriever=retriever, triage=triage, llm=llm)
        state = retriever.state
        # Operator information, not the person's business: logged, never shown in a reply.
        for n in state.notices:
            log.warning("%s", n)
        if state.built:
            log.info("search index built: %s (%d chunks, %.2f s)",
                     state.collection, state.chunks, state.build_seconds)
        return assistant

    # -- public API

    def respond(self, message: str, history: list[dict] | None = None, *,
                locale: str | None = None) -> Reply:
        """Answer one message; the same as `stream()` without the pieces."""
        for event in self.stream(message, history, locale=locale):
            if isinstance(event, Final):
                return event.reply
        raise RuntimeError("stream() ended without its Final event")

    def stream(self, message: str, history: list[dict] | None = None, *,
               locale: str | None = None) -> Iterator[StreamEvent]:
        """Yield `TextDelta`s as text is produced, then one `Final` with the Reply.

        The Reply's text is the final word: after verification it can differ from what
        was streamed (a sentence dropped, or the offline reply instead), and a front end
        should show `reply.text` once `Final` arrives.
        """
        t0 = time.perf_counter()
        timings = dict.fromkeys(STAGES, 0.0)
        # Triage reads the whole message (a long post's one alarming sentence may be near
        # its end); retrieval and the LLM read the first `max_query_chars`.
        full, notice = clean_user_text(message, TRIAGE_MAX_CHARS)
        text, cut = clean_user_text(full, self.settings.max_query_chars)
        hist = clean_history(history)
        locale = (locale or self.settings.locale or "US").upper()
        notices = [n for n in (notice or cut,) if n]
        condensed = self._speculate(text, full, hist)

        t = time.perf_counter()
        embedding = self.embedder.embed_query(text)
        timings["embed"] = _ms(t)

        t = time.perf_counter()
        earlier = [h["content"] for h in hist if h["role"] == "user"]
        result = self.triage.classify(full, earlier, embedding=embedding)
        timings["triage"] = _ms(t)
        route = result.route
        sticky_before = most_severe(
            result.sticky_route, *(h.get("route") for h in hist)
        )
        sticky = most_severe(sticky_before, route)
        base: dict[str, Any] = {
            "route": route,
            "sticky_route": sticky,
            "confidence": float(result.confidence),
            "reasons": list(result.reasons),
        }
        state = build_state(text, hist, self.bank.label_to_section)
        act = self._act(text, embedding, state, route, result.flags)
        base["act"] = act
        if route == "off_topic" and act not in ("off_topic", "safety") \
                and "not_english" not in result.flags:
            # off_topic needs evidence of another subject: a greeting or a question about
            # the article is part of the conversation (DESIGN.md routes)
            route = base["route"] = "advice"
            base["reasons"].append(f"{act}: part of the conversation, not off topic")

        policy = turn_policy(route, sticky_before, locale, result.flags)
        # a greeting routed off_topic is answered by the dialogue; crisis, abuse and a
        # message the triage cannot read always get the safety reply
        if policy.safety_reply and (act in ("safety", "off_topic") or route != "off_topic"
                                    or policy.case == "not_english"):
            from .safety import safety_reply

            t = time.perf_counter()
            sr = safety_reply(route if route in SAFETY_ROUTES else "off_topic", locale,
                              sticky=sticky_before, flags=tuple(result.flags))
            timings["respond"] = _ms(t)
            safe = Reply(sr.text, mode="offline", resources=list(sr.resources),
                         notice=_one_line(notices), **base)
            timings["first_text"] = _ms(t0)
            yield TextDelta(safe.text)
            timings["total"] = _ms(t0)
            safe.timings = timings
            yield Final(safe)
            return

        from .safety import sticky_note, sticky_resources, therapy_resources

        # the offline reply attaches the therapist directory itself, only when it shows it
        # (once per conversation); an LLM answer on the therapy route gets it here
        resources: list[Any] = list(sticky_resources(sticky_before, locale))
        llm_resources: list[Any] = []
        if route == "therapy" and sticky_before != "abuse" and act not in WRITTEN_ACTS:
            llm_resources = therapy_resources(locale)
        closing = sticky_note(sticky_before, locale)

        # Greetings, thanks, memory and the like are answered from written replies in both
        # modes: nothing to retrieve, nothing for a model to add.
        use_llm = self.llm is not None and sticky_before != "abuse" and \
            act not in WRITTEN_ACTS
        reply: Reply | None = None
        if use_llm:
            reply = yield from self._llm_turn(text, hist, route, embedding, locale, closing,
                                              timings, t0, condensed,
                                              situation=state.situation or None)
            if reply is not None:
                reply.resources = _merge(llm_resources + resources, reply.resources)
                reply.notice = _one_line(notices + ([reply.notice] if reply.notice else []))
                _set(reply, base)
        if reply is None:
            reply = self._offline_turn(text, hist, route, embedding, locale, sticky_before,
                                       closing, timings, act=act, state=state)
            reply.resources = _merge(resources, reply.resources)
            reply.notice = _one_line(notices)
            _set(reply, base)
            timings["first_text"] = _ms(t0)
            yield TextDelta(reply.text)
        timings["total"] = _ms(t0)
        reply.timings = timings
        yield Final(reply)

    # -- understanding the turn

    def _act(self, text: str, embedding: Any, state: ConversationState, route: str,
             flags: Sequence[str] = ()) -> str:
        """What the message is doing; safety routes are the triage's, never overridden.

        An `off_topic` verdict gives way to an act the detector is sure of (a greeting, a
        question about the article): the scope line is only for plainly other requests.
        A message the triage could not read (`not_english`) is `other_language`: the
        triage's language check is the one that decides.
        """
        if route in ("crisis", "abuse"):
            return "safety"
        if "not_english" in flags:
            return "other_language"
        act = self.detector.detect(text, embedding, state)
        if route == "off_topic" and act == "situation":
            return "off_topic"
        return act

    # -- the two responders

    def _offline_turn(self, text: str, hist: list[dict], route: str, embedding: Any,
                      locale: str, sticky: str | None, closing: str,
                      timings: dict[str, float], *, act: str | None = None,
                      state: ConversationState | None = None) -> Reply:
        state = state or build_state(text, hist, self.bank.label_to_section)
        act = act or self._act(text, embedding, state, route)
        composed = self._compose(text, hist, route, embedding, locale, sticky, closing,
                                 timings, act=act, state=state)
        t = time.perf_counter()
        bad = self.verifier.check_quotes([c.quote for c in composed.citations])
        timings["verify"] += _ms(t)
        verification = None
        if bad:  # never expected: quotes are cut from the corpus; keep the reply honest
            composed.citations = [c for c in composed.citations if c.quote not in bad]
            verification = f"repaired: dropped {len(bad)} quotes not found in the article"
        return Reply(composed.text, route=route, mode="offline", act=act,
                     citations=composed.citations, verification=verification,
                     retrieved=composed.retrieved,
                     resources=self._act_resources(act, locale, composed))

    def _act_resources(self, act: str, locale: str, composed: Composed) -> list[Any]:
        """Directories when the reply listed them; helplines when it can't read the message."""
        from .resources import INTERNATIONAL, resources_for
        from .safety import therapy_resources

        if act == "other_language":  # the triage could not read it: lines for anywhere
            local, world = resources_for(locale), resources_for(INTERNATIONAL)
            return [*local.crisis, *local.crisis_text, *world.crisis]
        return therapy_resources(locale) if composed.therapy_note else []

    def _compose(self, text: str, hist: list[dict], route: str, embedding: Any, locale: str,
                 sticky: str | None, closing: str, timings: dict[str, float], *,
                 act: str = "situation", state: ConversationState | None = None) -> Composed:
        state = state or build_state(text, hist, self.bank.label_to_section)
        limits, route = self._limits(route, sticky, locale, closing)
        t = time.perf_counter()
        if self.acts.handles(act):
            composed = self.acts.reply(act, text, state, self.bank.similarities(embedding),
                                       limits)
            timings["respond"] += _ms(t)
            return composed
        # The follow-up's words help the lexical search; the turn's one embedding serves
        # the dense search (a second embedding would double the turn's cost).
        query = self.bank.followup(text, hist).query
        if act == "article_topic":
            # "what does it say about doing new things together": the subject's own
            # embedding (a second, short one: the framing words pull toward the intro)
            query = topic_of(text)
            embedding = self.embedder.embed_query(query) if query != text else \
                self._topic_vector(embedding)
        k = max(self.settings.top_k, OFFLINE_K)
        passages = self.retriever.retrieve(query, k=k, embedding=embedding)
        timings["retrieve"] += _ms(t)
        t = time.perf_counter()
        composed = self.offline.compose(text, route=route, passages=passages,
                                        query_vec=embedding, state=state, limits=limits,
                                        topic=act == "article_topic")
        timings["respond"] += _ms(t)
        return composed

    def _topic_vector(self, embedding: Any) -> list[float]:
        """The query's embedding with the question's framing taken off, normalised."""
        v = np.asarray(embedding, dtype=np.float32) - TOPIC_FRAMING * self._framing
        return (v / (np.linalg.norm(v) or 1.0)).tolist()

    def _limits(self, route: str, sticky: str | None, locale: str, closing: str
                ) -> tuple[Limits, str]:
        """What the reply may draw on, from the safety policy; and the route to answer as."""
        from .safety import therapy_note

        policy = turn_policy(route, sticky, locale)
        if policy.allowed_sections is None:
            return Limits(therapy_note=therapy_note(locale), closing=closing), route
        # After an abuse disclosure only the sections that assume no safe relationship
        # remain, and couples therapy is not advised (SAFETY.md): the safety module says so.
        return Limits(allowed=policy.allowed_sections, abuse=True, opening=policy.opening,
                      closing=closing), policy.respond_as

    def _speculate(self, text: str, full: str, hist: list[dict]) -> Any:
        """Start condensing a follow-up early, when the rules see nothing unsafe in it.

        The condense round trip then overlaps the embedding and the full triage. A turn that
        still ends on a safety route never waits for it: its result is simply not used.
        """
        if self.llm is None or not hist or any(
            h.get("route") in ("crisis", "abuse") for h in hist
        ):
            return None
        if self.triage.rules_route(full) in SAFETY_ROUTES:
            return None
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="condense")
        return self.llm.start_condense(text, hist, self._pool)

    def _llm_turn(self, text: str, hist: list[dict], route: str, embedding: Any, locale: str,
                  closing: str, timings: dict[str, float], t0: float,
                  condensed: Any = None,
                  situation: str | None = None) -> Generator[TextDelta, None, Reply]:
        """Write the answer with the LLM, check it whole, then show it once.

        Nothing the model writes is shown before it has been checked (the page shows a
        "writing" state meanwhile), so no text is ever withdrawn. On any failure, past
        the turn's deadline, or when checking rejects the answer, the offline reply.
        """
        from .llm import LLMTurn, render_markers

        assert self.llm is not None  # stream() calls this only with an LLM configured
        turn = LLMTurn()
        pins = [self.offline.therapy_section] if route == "therapy" and \
            self.offline.therapy_section else []
        warm_ms = 0.0  # verification work done while the answer streamed
        deadline = self.settings.llm_deadline - (time.perf_counter() - t0)
        t = time.perf_counter()
        try:
            for piece in self.llm.run(text, hist, route=route, embedding=embedding,
                                      pin_sections=pins, turn=turn, condensed=condensed,
                                      situation=situation, deadline=max(0.1, deadline)):
                if piece.rstrip().endswith((".", "!", "?")) or "\n" in piece:
                    # A sentence just ended: embed it while the endpoint writes on.
                    tv = time.perf_counter()
                    self.verifier.warm(turn.answer)
                    warm_ms += _ms(tv)
        except LLMError as exc:
            timings["respond"] += _ms(t) - turn.retrieve_ms - warm_ms
            timings["retrieve"] += turn.retrieve_ms
            notice = (f"The language model wasn't available ({exc}), so this is the "
                      "offline answer from the article.")
            if turn.deadline_passed:
                notice = (f"The language model took longer than {self.settings.llm_deadline:g}"
                          " s, so this is the offline answer from the article.")
            return (yield from self._llm_fallback(text, hist, route, embedding, locale,
                                                  closing, timings, t0, notice, None))
        timings["retrieve"] += turn.retrieve_ms
        timings["respond"] += _ms(t) - turn.retrieve_ms - warm_ms
        timings["verify"] += warm_ms

        t = time.perf_counter()
        known = " ".join(x for x in (text, situation) if x)
        verdict = self.verifier.check(turn.answer, turn.passages, message=known,
                                      prompt=turn.instructions,
                                      truncated=turn.finish_reason == "length")
        timings["verify"] += _ms(t)
        if verdict.action == "replace":
            notice = ("The model's answer didn't hold up against the article, so this is the "
                      "offline answer.")
            return (yield from self._llm_fallback(text, hist, route, embedding, locale,
                                                  closing, timings, t0, notice, verdict))
        rendered, cited = render_markers(verdict.text, turn.passages)
        body = rendered.strip()
        if closing:
            body = f"{body}\n\n{closing}"
        timings["first_text"] = _ms(t0)
        yield TextDelta(body)
        return Reply(body, route=route, mode="llm",
                     citations=self._llm_citations(verdict, turn.passages, cited),
                     verification=verdict.summary(),
                     retrieved=list(dict.fromkeys(p.section_id for p in turn.passages)))

    def _llm_fallback(self, text: str, hist: list[dict], route: str, embedding: Any,
                      locale: str, closing: str, timings: dict[str, float], t0: float,
                      notice: str, verdict: Verdict | None) -> Generator[TextDelta, None, Reply]:
        """The offline reply in place of the model's, with a notice saying why."""
        reply = self._offline_turn(text, hist, route, embedding, locale, None, closing,
                                   timings)
        reply.mode = "fallback"
        reply.notice = notice
        reply.verification = verdict.summary() if verdict else None
        timings["first_text"] = _ms(t0)
        yield TextDelta(reply.text)
        return reply

    def _llm_citations(self, verdict: Verdict, passages: Sequence[Any],
                       cited: list[int]) -> list[Citation]:
        """A citation per passage the answer relies on, with verbatim words from it."""
        from .text import QUOTED

        order = list(cited)
        for c in verdict.checks:  # a supported sentence that forgot its [n] still counts
            if c.ok and c.kind == "claim" and c.source and c.source not in order:
                order.append(c.source)
        out: list[Citation] = []
        for n in order:
            p = passages[n - 1]
            quote = None
            for c in verdict.checks:
                if c.ok and n in c.cited:
                    for m in QUOTED.finditer(c.text):
                        exact = self.verifier.verbatim(m.group(1))
                        if exact and exact in p.chunk.text:
                            quote = exact
                            break
                if quote:
                    break
            if quote is None:
                quote = self._best_sentence(p, verdict, n)
            out.append(Citation(p.section_id, p.section_title, quote))
        return out

    def _best_sentence(self, passage: Any, verdict: Verdict, n: int) -> str:
        """The passage sentence that best supports what the answer said with it."""
        idx = set(self.bank.within(passage.chunk))
        best = max(
            (c for c in verdict.checks if c.ok and c.sentence in idx
             and (n in c.cited or c.source == n)),
            key=lambda c: c.support, default=None,
        )
        if best is not None and best.sentence is not None:
            return self.bank.sentences[best.sentence].text
        return self.bank.sentences[min(idx)].text if idx else passage.chunk.text


def _merge(*groups: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for group in groups:
        out += [r for r in group if r not in out]
    return out


def _set(reply: Reply, values: dict[str, Any]) -> None:
    for k, v in values.items():
        setattr(reply, k, v)


def _ms(t: float) -> float:
    return (time.perf_counter() - t) * 1000


def _one_line(notices: Sequence[str | None]) -> str | None:
    parts = [" ".join(n.split()) for n in notices if n]
    return " ".join(parts) if parts else None


__all__ = [
    "Assistant", "Citation", "Final", "Reply", "StreamEvent", "TextDelta", "clean_history",
    "most_severe",
]
