"""The triage's learned recall layer: a small head on the shared MiniLM embedding.

The head is a committed artefact (assistant/data/triage_model/): its weights, a manifest
naming the command, data, seed, split and thresholds that made it, and a SHA256 file
that both are checked against before use. It reads the turn's one query embedding for a
short message; a longer one is also cut into sentence windows, embedded in one batch,
and the windows' crisis and abuse scores are pooled by their maximum, so one alarming
sentence in the middle of a long post is not averaged away.

Rebuild with `python -m evals train-triage` (see the manifest); nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources as _pkg
from typing import Any, Protocol

import numpy as np

from .errors import ModelError

ROUTES = ("crisis", "abuse", "therapy", "advice", "off_topic")
ARTEFACT = "triage_model"
FILES = ("head.npz", "manifest.json")
SHORT_WORDS = 50  # up to this many words the whole-message embedding is read alone
WINDOW_WORDS = 30  # sentences are joined into windows of about this many words
MIN_WINDOW_WORDS = 6  # a shorter sentence joins its neighbour
MAX_WINDOWS = 48  # a very long post is read in wider windows, never in more encoder rows

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\s*\n+\s*")


class Encoder(Protocol):
    """What the model needs from the shared embedder."""

    def embed_query(self, text: str) -> list[float]: ...

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...


@dataclass(frozen=True)
class ModelVerdict:
    """The head's route for one message, and the scores behind it."""

    route: str
    confidence: float
    scores: dict[str, float]  # crisis and abuse pooled over windows; the rest whole-message
    window: int | None = None  # which window raised crisis/abuse (None: the whole message)
    windows: int = 0


def windows(text: str) -> list[str]:
    """Cut a message into windows of whole sentences of about WINDOW_WORDS words."""
    words_total = len(text.split())
    size = max(WINDOW_WORDS, -(-words_total // MAX_WINDOWS))
    out: list[str] = []
    current: list[str] = []
    for sentence in (s.strip() for s in _SENTENCE_END.split(text)):
        words = sentence.split()
        while len(words) > size:  # a run-on "sentence": fixed-size pieces
            if current:
                out.append(" ".join(current))
                current = []
            out.append(" ".join(words[:size]))
            words = words[size:]
        if not words:
            continue
        if current and len(current) + len(words) > size and len(current) >= MIN_WINDOW_WORDS:
            out.append(" ".join(current))
            current = []
        current.extend(words)
    if current:
        if out and len(current) < MIN_WINDOW_WORDS:
            out[-1] = f"{out[-1]} {' '.join(current)}"
        else:
            out.append(" ".join(current))
    return out[:MAX_WINDOWS]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_artefact(files: dict[str, bytes], sums: str) -> tuple[dict[str, np.ndarray], dict]:
    """Check the artefact's files against the SHA256 list, then parse them."""
    expected = {}
    for line in sums.splitlines():
        if line.strip():
            digest, _, name = line.strip().partition("  ")
            expected[name] = digest
    for name in FILES:
        if name not in files:
            raise ModelError(f"The triage model file {name} is missing; reinstall the package.")
        actual = _sha256(files[name])
        if expected.get(name) != actual:
            raise ModelError(
                f"The triage model file {name} failed its checksum (sha256 {actual[:12]}…, "
                f"expected {str(expected.get(name))[:12]}…); refusing to load it. Rebuild it "
                "with `python -m evals train-triage` or reinstall the package.")
    with np.load(io.BytesIO(files["head.npz"]), allow_pickle=False) as npz:
        weights = {k: np.asarray(npz[k], dtype=np.float32) for k in npz.files}
    return weights, json.loads(files["manifest.json"])


class TriageModel:
    """A head over normalised MiniLM embeddings: `logreg` (5-way logistic), `mlp` (one
    hidden layer) or `ovr` (5-way logistic plus one-vs-rest binary crisis and abuse heads,
    whose sigmoid scores stand in the crisis and abuse columns)."""

    def __init__(self, weights: dict[str, np.ndarray], manifest: dict[str, Any]) -> None:
        self.weights = weights
        self.manifest = manifest
        self.kind = manifest["head"]
        self.routes = tuple(manifest["routes"])
        self.thresholds: dict[str, float] = {k: float(v) for k, v in
                                             manifest["thresholds"].items()}
        self._index = {r: i for i, r in enumerate(self.routes)}
        if set(self.routes) != set(ROUTES):
            raise ModelError(f"The triage model's routes {self.routes} are not {ROUTES}.")
        self._tuned: Any = None  # the fine-tuned encoder (`tuned`), built on first use
        self._tuned_lock = threading.Lock()

    @property
    def reads_text(self) -> bool:
        """True when the model runs its own encoder on the text (not the shared embedding)."""
        return self.kind == "tuned"

    def tuned_encoder(self, base: Any = None) -> Any:
        """The fine-tuned MiniLM (`tuned` only), built once: on `base`, the query embedding's
        MiniLM when the server has one (its bottom layers are shared), else on its own copy
        loaded from the checked local files."""
        with self._tuned_lock:
            if self._tuned is None:
                from .index import local_model_dir, verify_model
                from .minilm import MiniLM
                from .triage_encoder import TunedEncoder

                if not isinstance(base, MiniLM):
                    model_dir = local_model_dir()
                    verify_model(model_dir)
                    base = model_dir
                self._tuned = TunedEncoder(base, self.weights)
            return self._tuned

    @classmethod
    def load(cls) -> TriageModel:
        """Load the packaged artefact, checksums first."""
        base = _pkg.files("assistant.data").joinpath(ARTEFACT)
        files = {}
        for name in FILES:
            try:
                files[name] = base.joinpath(name).read_bytes()
            except (FileNotFoundError, OSError):
                continue
        try:
            sums = base.joinpath("SHA256").read_text(encoding="utf-8")
        except (FileNotFoundError, OSError) as exc:
            raise ModelError("The triage model has no SHA256 file; reinstall the package.") \
                from exc
        return cls(*read_artefact(files, sums))

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """Route probabilities, one row per embedding (rows in ROUTES order of the manifest)."""
        if self.kind == "tuned":
            raise ModelError("A tuned triage model reads text: use classify().")
        x = np.asarray(vectors, dtype=np.float32)
        x = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)
        w = self.weights
        if self.kind == "mlp":
            x = np.maximum(x @ w["W1"] + w["b1"], 0.0)
            logits = x @ w["W2"] + w["b2"]
        else:
            logits = x @ w["W"] + w["b"]
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        p = e / e.sum(axis=1, keepdims=True)
        if self.kind == "ovr":
            # one-vs-rest binary heads decide crisis and abuse (columns in `safety`);
            # the 5-way softmax still ranks therapy, advice and off_topic
            z = x @ w["Wb"] + w["bb"]
            for j, route in enumerate(("crisis", "abuse")):
                p[:, self._index[route]] = 1.0 / (1.0 + np.exp(-z[:, j]))
        return p

    def decide(self, whole: np.ndarray, windowed: np.ndarray | None = None) -> ModelVerdict:
        """Route from the whole-message probabilities and, for long posts, the windows'."""
        t, ix = self.thresholds, self._index
        scores = {r: float(whole[ix[r]]) for r in ROUTES}
        n = 0 if windowed is None else len(windowed)
        for kind in ("crisis", "abuse"):
            if scores[kind] >= t[kind]:
                return ModelVerdict(kind, scores[kind], scores, None, n)
            if windowed is not None and n:
                col = windowed[:, ix[kind]]
                best = int(col.argmax())
                if col[best] >= t[f"{kind}_window"]:
                    scores[kind] = float(col[best])
                    return ModelVerdict(kind, scores[kind], scores, best, n)
        calm = {r: scores[r] for r in ("therapy", "advice", "off_topic")}
        route = max(calm, key=calm.__getitem__)
        if route == "off_topic" and scores["off_topic"] < t["off_topic"]:
            # off_topic needs evidence of a task about something else
            route = "therapy" if scores["therapy"] > scores["advice"] else "advice"
        return ModelVerdict(route, scores[route], scores, None, n)

    def classify(self, text: str, encoder: Encoder | None,
                 embedding: Sequence[float] | None = None) -> ModelVerdict:
        """Score one message; `embedding` is the turn's shared query embedding, if any
        (a `tuned` model reads the text with its own encoder and needs neither)."""
        parts = windows(text) if len(text.split()) > SHORT_WORDS else []
        if len(parts) <= 1:
            parts = []
        if self.kind == "tuned":
            # two batches: the whole message (up to 256 tokens) would pad every short window
            # to its length
            enc = self.tuned_encoder()
            whole_p = enc.probabilities([text])[0]
            return self.decide(whole_p, enc.probabilities(parts) if parts else None)
        if encoder is None:
            raise ModelError("This triage head needs the shared embedder.")
        if embedding is None and parts:
            vecs = encoder.embed_documents([text, *parts])  # one encoder call
            whole: Sequence[float] = vecs[0]
            rest: Sequence[Sequence[float]] = vecs[1:]
        else:
            whole = embedding if embedding is not None else encoder.embed_query(text)
            rest = encoder.embed_documents(parts) if parts else []
        probs = self.probabilities(np.asarray([whole, *rest], dtype=np.float32))
        return self.decide(probs[0], probs[1:] if rest else None)


__all__ = [
    "Encoder",
    "ModelVerdict",
    "TriageModel",
    "read_artefact",
    "windows",
]
