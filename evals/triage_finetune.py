"""Fine-tune MiniLM's top layers and a 5-way head for the triage (`--head tuned`).

The bottom layers stay the shared weights (frozen); the top `top_layers` layers and a
linear head over the mean-pooled token states are trained with class-weighted
cross-entropy, a fixed seed and rows in a seeded order, on CPU. The result is the
artefact state that assistant/triage_encoder.TunedEncoder loads.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from assistant.triage_encoder import LAYER_PREFIX, MAX_TOKENS


def finetune(texts: Sequence[str], labels: Sequence[int], n_classes: int, *,
             sample_weight: Sequence[float] | None = None,
             top_layers: int = 2, epochs: int = 4, lr: float = 4e-5, head_lr: float = 2e-3,
             batch: int = 16, seed: int = 8, max_tokens: int = MAX_TOKENS,
             log_every: int = 50) -> dict[str, np.ndarray]:
    """Train; return the tuned layers (float16) and the head (float32) as plain arrays."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from assistant.index import local_model_dir, verify_model

    torch.manual_seed(seed)
    model_dir = local_model_dir()
    verify_model(model_dir)
    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    bert = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
    n_layers = len(bert.encoder.layer)
    tuned = list(range(n_layers - top_layers, n_layers))
    for p in bert.parameters():
        p.requires_grad = False
    for i in tuned:
        for p in bert.encoder.layer[i].parameters():
            p.requires_grad = True
    dim = bert.config.hidden_size
    head = torch.nn.Linear(dim, n_classes)
    y = np.asarray(labels)
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weights = torch.tensor(len(y) / (n_classes * np.maximum(counts, 1)), dtype=torch.float32)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, reduction="none")
    sw = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    opt = torch.optim.AdamW([
        {"params": [p for p in bert.parameters() if p.requires_grad], "lr": lr},
        {"params": head.parameters(), "lr": head_lr},
    ], weight_decay=0.01)
    rng = np.random.default_rng(seed)
    # batches of similar length (less padding), in a seeded order each epoch
    by_len = np.argsort([len(t) for t in texts], kind="stable")
    batches = [by_len[i : i + batch] for i in range(0, len(by_len), batch)]
    lower = _lower_states(bert, tok, texts, batches, n_layers - top_layers, max_tokens)
    steps = epochs * len(batches)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * max(0.0, (steps - s) / steps))
    t0, step = time.perf_counter(), 0
    for epoch in range(epochs):
        bert.train()
        total = 0.0
        for n, b in enumerate(rng.permutation(len(batches))):
            h, mask = _padded([lower[i] for i in batches[b]])
            each = loss_fn(head(_top(bert, h, mask, tuned)),
                           torch.as_tensor(y[batches[b]], dtype=torch.long))
            w = torch.as_tensor(sw[batches[b]], dtype=torch.float32)
            loss = (each * w).sum() / w.sum()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]],
                                           1.0)
            opt.step()
            sched.step()
            total += loss.item()
            step += 1
            if log_every and step % log_every == 0:
                print(f"  step {step}/{steps}, loss {total / (n + 1):.3f} "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)
        print(f"  epoch {epoch + 1}: mean loss {total / len(batches):.3f} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    bert.eval()
    state = {k: v.detach().numpy().astype(np.float16) for k, v in bert.state_dict().items()
             if k.startswith(LAYER_PREFIX) and int(k.split(".")[2]) in tuned}
    state["head.W"] = head.weight.detach().numpy().T.astype(np.float32)
    state["head.b"] = head.bias.detach().numpy().astype(np.float32)
    return state


def _lower_states(bert, tok, texts: Sequence[str], batches, upto: int, max_tokens: int) -> list:
    """Each text's token states after the frozen bottom layers, computed once."""
    import torch

    out: list = [None] * len(texts)
    t0 = time.perf_counter()
    bert.eval()
    layers = bert.encoder.layer
    bert.encoder.layer = torch.nn.ModuleList(list(layers)[:upto])  # the frozen ones only
    try:
        _run_lower(bert, tok, texts, batches, max_tokens, out)
    finally:
        bert.encoder.layer = layers
    print(f"  frozen layers run once over {len(texts)} texts "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return out


def _run_lower(bert, tok, texts: Sequence[str], batches, max_tokens: int, out: list) -> None:
    import torch

    with torch.inference_mode():
        for idx in batches:
            enc = tok([texts[i] for i in idx], padding=True, truncation=True,
                      max_length=max_tokens, return_tensors="pt")
            states = bert(**enc).last_hidden_state
            for j, i in enumerate(idx):
                n = int(enc["attention_mask"][j].sum())
                out[i] = states[j, :n].clone()


def _padded(states: list):
    """Stack token states of different lengths, with the attention mask."""
    import torch

    width = max(s.shape[0] for s in states)
    h = torch.zeros(len(states), width, states[0].shape[1])
    mask = torch.zeros(len(states), width, dtype=torch.long)
    for j, s in enumerate(states):
        h[j, : s.shape[0]] = s
        mask[j, : s.shape[0]] = 1
    return h, mask


def _top(bert, h, mask, tuned: list[int]):
    """The tuned top layers over cached states, mean-pooled (as TunedEncoder.pooled)."""
    from transformers.masking_utils import create_bidirectional_mask

    full = create_bidirectional_mask(config=bert.config, inputs_embeds=h, attention_mask=mask)
    for i in tuned:
        out = bert.encoder.layer[i](h, attention_mask=full)
        h = out[0] if isinstance(out, tuple) else out
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp(min=1.0)
