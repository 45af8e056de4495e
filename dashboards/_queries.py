"""Small interactive queries the dashboard runs (read-only; nothing is trained or written).

``token_feature_set``: the features an SAE uses on one token across the held-out set — the token's
neighbourhood in the function-token graph (Zhang, Lin, Li 2025; ``analyses.runs.token_features``).
``prompt_features``: the model's activations at a hook for a typed prompt and the SAE's codes per
token (FC / MC with their learned thresholds, since a single prompt is not a training batch).
Letters: T prompt tokens, F features, D d_model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch



def token_feature_set(run_root: Path, hook: str, arch: str, token_id: int, max_tokens: int = 32768) -> dict:
    """{"n_occurrences", "tokens_scanned", "features": [[feature, times fired on the token, mean activation], …]}
    (most frequent first): ``analyses.runs.token_features`` for one token."""
    from superscope.analyses.runs.token_features import token_feature_sets

    return token_feature_sets(run_root, hook, arch, [token_id], max_tokens)[int(token_id)]


@torch.no_grad()
def prompt_features(model: Any, sae: Any, hook: str, text: str, max_tokens: int = 128, top: int = 8) -> dict:
    """Encode ``text`` (BOS prepended, cut to ``max_tokens``) and return per-token strings, residual norms,
    L0, each token's ``top`` features and the prompt's strongest features' activations on every token."""
    from superscope.activations.capture import run_hooks

    if not text.strip():
        raise ValueError("type some text first")
    tokens = model.to_tokens(text)[:, :max_tokens]
    acts_TD = run_hooks(model, tokens, [hook])[hook][0].float()
    rows = slice(1, None) if tokens.shape[1] > 1 else slice(0, None)  # SAEs were trained without the BOS row
    mode = sae.cfg.inference_mode
    sae.cfg.inference_mode = "threshold"
    try:
        z_TF = sae.encode(acts_TD[rows])
        x_hat = sae.decode(z_TF)
    finally:
        sae.cfg.inference_mode = mode
    ids = tokens[0, rows].tolist()
    strings = [model.tokenizer.decode([i]) for i in ids]
    vals, feats = z_TF.topk(min(top, z_TF.shape[1]), dim=1)
    strongest = z_TF.max(0).values.topk(min(20, z_TF.shape[1])).indices
    strongest = strongest[z_TF.max(0).values[strongest] > 0]
    err = (acts_TD[rows] - x_hat).pow(2).sum(1) / acts_TD[rows].pow(2).sum(1).clamp_min(1e-9)
    return {"tokens": strings, "token_ids": ids, "norms": acts_TD[rows].norm(dim=1).tolist(),
            "l0": (z_TF > 0).sum(1).tolist(), "rel_error": err.tolist(),
            "top_features": feats.tolist(), "top_values": vals.tolist(),
            "strongest": strongest.tolist(), "strongest_acts": z_TF[:, strongest].T.tolist()}
