"""all-MiniLM-L6-v2 on CPU, run layer by layer so the triage can share its bottom layers.

`MiniLM` is the offline query and passage embedding (a LangChain `Embeddings`): mean-pooled
last-layer token states, normalised, at most 256 tokens, as sentence-transformers computes
them for this model. It runs the transformer in two parts, the bottom layers then the top
ones, and can keep the token states between the two for the last few queries. The
triage's fine-tuned top layers (assistant/triage_encoder.py) continue from those states,
so a turn reads its text through the shared bottom layers once: the triage costs only its
own top layers beyond the query embedding, and the process holds one copy of the model.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from .errors import ModelError

MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length in sentence-transformers
BATCH = 32
KEEP_STATES = 8  # queries whose bottom-layer states are kept for the triage


class MiniLM(Embeddings):
    """The checked local MiniLM: embeddings, and the bottom-layer states for the triage."""

    def __init__(self, model_dir: Path) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self._torch = torch
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
            self.bert = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(f"MiniLM could not load from {model_dir}: {exc}") from exc
        self.bert.eval()
        self.n_layers = len(self.bert.encoder.layer)
        self.split = self.n_layers  # where states are kept: set by share_lower()
        self._kept: OrderedDict[str, Any] = OrderedDict()
        # One forward pass at a time: 2 cores, no gain from more, and the cache stays simple.
        self.lock = threading.RLock()

    # ------------------------------------------------------------ the layers, in two parts

    def share_lower(self, upto: int) -> None:
        """Keep each query's token states after layer `upto` (the triage's shared part)."""
        if not 0 < upto < self.n_layers:
            raise ModelError(f"MiniLM has {self.n_layers} layers; cannot share {upto}.")
        with self.lock:
            self.split = upto
            self._kept.clear()

    def tokenize(self, texts: Sequence[str]) -> Any:
        return self.tokenizer(list(texts), padding=True, truncation=True,
                              max_length=MAX_TOKENS, return_tensors="pt")

    def lower(self, enc: Any, upto: int) -> Any:
        """Token states after the bottom `upto` layers (embeddings included)."""
        h = self.bert.embeddings(input_ids=enc["input_ids"],
                                 token_type_ids=enc.get("token_type_ids"))
        return self.run_layers(h, enc["attention_mask"], self.bert.encoder.layer[:upto])

    def run_layers(self, h: Any, mask: Any, layers: Sequence[Any]) -> Any:
        """Token states through `layers`, with padding masked out."""
        from transformers.masking_utils import create_bidirectional_mask

        full = create_bidirectional_mask(config=self.bert.config, inputs_embeds=h,
                                         attention_mask=mask)
        for layer in layers:
            out = layer(h, attention_mask=full)
            h = out[0] if isinstance(out, tuple) else out
        return h

    @staticmethod
    def mean_pool(h: Any, mask: Any) -> Any:
        m = mask.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp(min=1.0)

    def _embed_batch(self, texts: Sequence[str], keep: bool) -> list[list[float]]:
        torch = self._torch
        with self.lock, torch.inference_mode():
            enc = self.tokenize(texts)
            mid = self.lower(enc, self.split)
            top = self.run_layers(mid, enc["attention_mask"],
                                  self.bert.encoder.layer[self.split:])
            vecs = torch.nn.functional.normalize(self.mean_pool(top, enc["attention_mask"]),
                                                 dim=1)
            if keep and self.split < self.n_layers:
                for j, text in enumerate(texts):
                    n = int(enc["attention_mask"][j].sum())
                    self._remember(text, mid[j : j + 1, :n].clone())
        return vecs.tolist()

    def _remember(self, text: str, states: Any) -> None:
        self._kept[text] = states
        self._kept.move_to_end(text)
        while len(self._kept) > KEEP_STATES:
            self._kept.popitem(last=False)

    def lower_states(self, texts: Sequence[str]) -> tuple[Any, Any]:
        """The batch's padded token states after the shared layers, and its attention mask:
        a query embedded lately is not read again."""
        torch = self._torch
        with self.lock, torch.inference_mode():
            kept = [self._kept.get(t) for t in texts]
            if all(k is not None for k in kept):
                return _pad(torch, kept)
            enc = self.tokenize(texts)
            return self.lower(enc, self.split), enc["attention_mask"]

    # ------------------------------------------------------------ LangChain Embeddings

    def embed_query(self, text: str) -> list[float]:
        return self._embed_batch([text], keep=True)[0]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        # batches of similar length pad less (sentence-transformers does the same)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        out: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), BATCH):
            idx = order[start : start + BATCH]
            for i, vec in zip(idx, self._embed_batch([texts[i] for i in idx], keep=False),
                              strict=True):
                out[i] = vec
        return out


def _pad(torch: Any, states: list[Any]) -> tuple[Any, Any]:
    """Stack kept states ([1, n, d] each) into one padded batch with its mask."""
    width = max(s.shape[1] for s in states)
    h = torch.zeros(len(states), width, states[0].shape[2])
    mask = torch.zeros(len(states), width, dtype=torch.long)
    for j, s in enumerate(states):
        h[j, : s.shape[1]] = s[0]
        mask[j, : s.shape[1]] = 1
    return h, mask


__all__ = ["MAX_TOKENS", "MiniLM"]
