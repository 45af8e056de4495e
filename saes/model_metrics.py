"""Metrics that need the model: the SAE spliced into the forward pass at its hook
(specs/saes.md "Metrics"; SAELens' CE-loss-recovered convention).

    CE_clean  — next-token cross-entropy of the unmodified model
    CE_sae    — the hook's activation replaced by the SAE reconstruction x̂
    CE_zero   — the hook's activation replaced by 0 (the zero-ablation baseline)
    CE-loss recovered = (CE_zero − CE_sae) / (CE_zero − CE_clean)
    KL = mean over positions of KL(p_clean ‖ p_sae)

BOS positions are left unmodified in all three runs (the SAEs are trained without them: BOS
activations are norm outliers, and every SAE library excludes or special-cases them).
The model is any TransformerLens model/bridge with ``run_with_hooks``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import BaseSAE
from .result_repr import Headline, ResultRepr


@dataclass(frozen=True, repr=False)
class SpliceMetrics(ResultRepr):
    """CE-loss recovered and KL for one SAE at its hook, on held-out tokens."""

    n_tokens: int
    ce_clean: float
    ce_sae: float
    ce_zero: float
    ce_loss_recovered: float
    kl_div: float

    def to_dict(self) -> dict:
        return asdict(self)

    def headline(self) -> list[Headline]:
        return [("CE-loss recovered", self.ce_loss_recovered, "pct"), ("KL", self.kl_div, "num"),
                ("CE clean", self.ce_clean, "num"), ("CE with SAE", self.ce_sae, "num"),
                ("CE zero-ablated", self.ce_zero, "num"), ("tokens", self.n_tokens, "count")]


def _next_token_ce(logits_BTV: Tensor, tokens_BT: Tensor) -> Tensor:
    """Per-position CE of predicting token t+1 from position t: [B, T−1]."""
    logp = F.log_softmax(logits_BTV[:, :-1].float(), dim=-1)
    return -logp.gather(-1, tokens_BT[:, 1:, None]).squeeze(-1)


def _replacing_hook(replace: Callable[[Tensor], Tensor], keep_BT: Tensor):
    def hook(act: Tensor, hook: Any = None) -> Tensor:
        out = act.clone()
        out[keep_BT] = replace(act[keep_BT]).to(act.dtype)
        return out
    return hook


@torch.no_grad()
def splice_metrics(model: Any, saes: dict[str, BaseSAE], hook: str, token_batches: Iterable[Tensor],
                   bos_id: int | None = None) -> dict[str, SpliceMetrics]:
    """Evaluate every SAE of ``saes`` (name → SAE, all at ``hook``) on the same token batches [b, T].

    Costs 2 + len(saes) full forward passes per batch (clean and zero-ablation are shared)."""
    sums = {name: {"ce": 0.0, "kl": 0.0} for name in saes}
    ce_clean = ce_zero = 0.0
    n = 0
    for tokens in token_batches:
        tokens = tokens.long()
        keep_BT = tokens != bos_id if bos_id is not None else torch.ones_like(tokens, dtype=torch.bool)
        clean = model(tokens)
        logp_clean = F.log_softmax(clean[:, :-1].float(), dim=-1)
        ce_clean += float(_next_token_ce(clean, tokens).sum())
        zero = model.run_with_hooks(tokens, fwd_hooks=[(hook, _replacing_hook(torch.zeros_like, keep_BT))])
        ce_zero += float(_next_token_ce(zero, tokens).sum())
        for name, sae in saes.items():
            sae.eval()
            spliced = model.run_with_hooks(
                tokens, fwd_hooks=[(hook, _replacing_hook(lambda x, s=sae: s(x.float()).x_hat, keep_BT))])
            sums[name]["ce"] += float(_next_token_ce(spliced, tokens).sum())
            logp_sae = F.log_softmax(spliced[:, :-1].float(), dim=-1)
            sums[name]["kl"] += float((logp_clean.exp() * (logp_clean - logp_sae)).sum())
        n += tokens.shape[0] * (tokens.shape[1] - 1)
    if n == 0:
        raise ValueError("no held-out tokens to evaluate the spliced model on")
    clean_mean, zero_mean = ce_clean / n, ce_zero / n
    out = {}
    for name, s in sums.items():
        ce_sae = s["ce"] / n
        denom = zero_mean - clean_mean
        out[name] = SpliceMetrics(n, clean_mean, ce_sae, zero_mean,
                                  (zero_mean - ce_sae) / denom if denom != 0 else float("nan"), s["kl"] / n)
    return out
