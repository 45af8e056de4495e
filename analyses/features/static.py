"""Per-feature data that depends only on weights: logit effects and decoder neighbours.

Logit effect (direct path, as in SAELens / Neuronpedia "logit weights"): the decoder row of f in the
model's residual units is W_dec[f] / s (the SAE decodes x̂ = (z W_dec + b_dec) / s), and the model
reads the residual through its final norm and unembedding, logits = (g ⊙ x / rms(x)) W_U. Ignoring
the per-token positive factor 1/rms(x), one unit of feature f moves the logits by

    effect_f = (g ⊙ W_dec[f] / s) @ W_U            [V]

(g = the final RMSNorm/LayerNorm weight when the model has one; TransformerBridge does not fold it
into W_U). We keep the top and bottom ``n`` tokens per feature, computed in row chunks so the [F, V]
matrix is never held whole.

Nearest features: cosine similarity of decoder rows, top ``n`` per feature (itself excluded).
Letters: F features, D d_in, V vocabulary, C rows per chunk.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def unembedding(model: Any) -> tuple[Tensor, Tensor | None]:
    """``(W_U [D, V], g [D] or None)``: the unembedding and the final norm's weight, read from a
    TransformerLens model or bridge."""
    W_U = getattr(model, "W_U", None)
    if W_U is None and hasattr(model, "unembed"):
        W_U = model.unembed.W_U
    if W_U is None:
        raise ValueError(f"{type(model).__name__} exposes no W_U / unembed.W_U; logit effects need the unembedding")
    gain = None
    ln = getattr(model, "ln_final", None)
    if ln is not None:
        weights = [p for name, p in ln.named_parameters() if name.split(".")[-1] in ("weight", "w")]
        if len(weights) == 1 and weights[0].shape == (W_U.shape[0],):
            gain = weights[0].detach().float()
    return W_U.detach().float(), gain


@torch.no_grad()
def logit_effects(W_dec_FD: Tensor, input_scale: float, W_U_DV: Tensor, gain_D: Tensor | None, n: int,
                  chunk: int = 256) -> dict[str, Tensor]:
    """Top / bottom ``n`` logit effects per feature: ids ``[F, n]`` int64 and values ``[F, n]``."""
    F, V = W_dec_FD.shape[0], W_U_DV.shape[1]
    n = min(n, V)
    dirs_FD = W_dec_FD.detach().float() / input_scale
    if gain_D is not None:
        dirs_FD = dirs_FD * gain_D
    out = {k: [] for k in ("logit_top_ids_FL", "logit_top_vals_FL", "logit_bot_ids_FL", "logit_bot_vals_FL")}
    for s in range(0, F, chunk):
        eff_CV = dirs_FD[s:s + chunk] @ W_U_DV
        top = eff_CV.topk(n, dim=1)
        bot = eff_CV.topk(n, dim=1, largest=False)
        out["logit_top_ids_FL"].append(top.indices)
        out["logit_top_vals_FL"].append(top.values)
        out["logit_bot_ids_FL"].append(bot.indices)
        out["logit_bot_vals_FL"].append(bot.values)
    return {k: torch.cat(v) for k, v in out.items()}


@torch.no_grad()
def decoder_neighbours(W_dec_FD: Tensor, n: int, chunk: int = 1024) -> dict[str, Tensor]:
    """The ``n`` features with the most similar decoder direction (cosine), per feature."""
    dirs_FD = torch.nn.functional.normalize(W_dec_FD.detach().float(), dim=1)
    F = dirs_FD.shape[0]
    n = min(n, F - 1)
    ids, cos = [], []
    for s in range(0, F, chunk):
        sim_CF = dirs_FD[s:s + chunk] @ dirs_FD.T
        rows = torch.arange(sim_CF.shape[0])
        sim_CF[rows, rows + s] = -torch.inf  # not its own neighbour
        top = sim_CF.topk(n, dim=1)
        ids.append(top.indices)
        cos.append(top.values)
    return {"neighbour_ids_FN": torch.cat(ids), "neighbour_cos_FN": torch.cat(cos)}
