"""What an edit costs on held-out text: KL to the clean next-token distribution, the CE-loss change, and
how the edited latents' own activations move.

    KL     = mean over predicted positions of KL(p_clean ‖ p_steered)
    ΔCE    = CE_steered − CE_clean  (next-token cross-entropy on the corpus tokens)
    latent = per edit, the mean code z_f at its hook: in the clean run, in the steered run as it arrives
             (changed by edits at earlier hooks) and after the edits at that hook (what the SAE re-reads)

Predictions from BOS positions are left out (they are never edited). SAELens' ``run_with_saes`` /
Neuronpedia's steering report the same KL; the CE change is the splice metric's convention
(``saes.model_metrics``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from superscope.saes.base import BaseSAE
from superscope.saes.result_repr import Headline, ResultRepr

from .edits import Edit
from .generation import kl_per_position
from .steering import Steering, check_edits, latent_codes, sae_map


@dataclass(frozen=True)
class LatentShift:
    """One edited latent's mean code at its hook."""

    hook: str
    latent: int
    op: str
    value: float
    clean: float
    """Mean z_f over edited positions, unedited model."""
    arriving: float
    """Mean z_f of the steered run before this hook's edits (≠ clean when an earlier hook was edited)."""
    after: float
    """Mean z_f after this hook's edits (the SAE re-reading the edited residual)."""
    fired_clean: float
    fired_after: float
    """Fraction of positions where z_f > 0, clean and after the edits."""


@dataclass(frozen=True, repr=False)
class EditCost(ResultRepr):
    """KL, CE change and latent shifts of a list of edits on held-out contexts."""

    edits: tuple[dict, ...]
    n_tokens: int
    kl: float
    ce_clean: float
    ce_steered: float
    latents: tuple[LatentShift, ...]

    @property
    def ce_delta(self) -> float:
        return self.ce_steered - self.ce_clean

    def to_dict(self) -> dict:
        return {**asdict(self), "ce_delta": self.ce_delta}

    def headline(self) -> list[Headline]:
        return [("KL", self.kl, "num"), ("ΔCE", self.ce_delta, "num"), ("CE clean", self.ce_clean, "num"),
                ("tokens", self.n_tokens, "count")]


def next_token_ce(logits_BTV: Tensor, tokens_BT: Tensor) -> Tensor:
    """Per-position CE of predicting token t+1 from position t: [B, T−1]."""
    return F.cross_entropy(logits_BTV[:, :-1].float().transpose(1, 2), tokens_BT[:, 1:], reduction="none")


def predicted_mask(tokens_BT: Tensor, bos_id: int | None) -> Tensor:
    """[B, T−1]: positions whose next-token prediction counts (not made from a BOS position)."""
    return tokens_BT[:, :-1] != bos_id if bos_id is not None else torch.ones_like(tokens_BT[:, :-1], dtype=torch.bool)


class _Capture:
    """Clean activations at some hooks (the clean run's codes of the edited latents)."""

    def __init__(self, hooks: Sequence[str]):
        self.hooks, self.acts = list(hooks), {}

    def fwd_hooks(self) -> list[tuple[str, Any]]:
        def save(act: Tensor, hook: Any, name: str) -> Tensor:
            self.acts[name] = act.detach()
            return act
        return [(h, lambda a, hook, h=h: save(a, hook, h)) for h in self.hooks]


@torch.no_grad()
def edit_cost(model: Any, saes: Mapping[str, BaseSAE] | Sequence[BaseSAE] | BaseSAE, edits: Sequence[Edit] | Edit,
              token_batches: Iterable[Tensor]) -> EditCost:
    """KL / ΔCE / latent shifts of the edits over batches of held-out contexts [b, T] (two forwards each)."""
    edits = [edits] if isinstance(edits, Edit) else list(edits)
    saes = sae_map(saes)
    check_edits(model, saes, edits)
    bos = getattr(getattr(model, "tokenizer", None), "bos_token_id", None)
    hooks = list(dict.fromkeys(e.hook for e in edits))
    kl = ce_clean = ce_steered = 0.0
    n = 0
    sums = torch.zeros(len(edits), 5, dtype=torch.float64)  # clean, arriving, after, fired clean, fired after
    rows = 0
    for tokens in token_batches:
        tokens = tokens.long().to(model.cfg.device)
        cap = _Capture(hooks)
        with model.hooks(fwd_hooks=cap.fwd_hooks()):
            clean = model(tokens)
        with Steering(model, saes, edits, check=False, record=True) as steering:
            steered = model(tokens)
        mask = predicted_mask(tokens, bos)
        kl += float(kl_per_position(clean[:, :-1], steered[:, :-1])[mask].sum())
        ce_clean += float(next_token_ce(clean, tokens)[mask].sum())
        ce_steered += float(next_token_ce(steered, tokens)[mask].sum())
        n += int(mask.sum())
        keep = tokens != bos if bos is not None else torch.ones_like(tokens, dtype=torch.bool)
        for h in hooks:
            mine = [i for i, e in enumerate(edits) if e.hook == h]
            sae = saes[h]
            z_clean = latent_codes(sae, cap.acts[h][keep].to(sae.W_dec.dtype), [edits[i].latent for i in mine])
            z_arr, z_after = steering.readout[h]
            for j, i in enumerate(mine):
                sums[i] += torch.tensor([float(z_clean[:, j].sum()), float(z_arr[:, j].sum()),
                                         float(z_after[:, j].sum()), float((z_clean[:, j] > 0).sum()),
                                         float((z_after[:, j] > 0).sum())], dtype=torch.float64)
        rows += int(keep.sum())
    if n == 0:
        raise ValueError("no held-out tokens to measure the edit on: pass contexts of at least 2 tokens")
    means = (sums / max(rows, 1)).tolist()
    shifts = tuple(LatentShift(e.hook, e.latent, e.op, e.value, *m) for e, m in zip(edits, means))
    return EditCost(tuple(e.to_dict() for e in edits), n, kl / n, ce_clean / n, ce_steered / n, shifts)
