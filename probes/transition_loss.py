"""Next-token loss split by (current token type → next token type) (Zhang, Lin, Li 2025; specs/probes.md §2).

losses[n, t] is the loss of predicting token t+1 from position t, so the transition of that loss is
(type of ids[n, t]) → (type of ids[n, t+1]), type ∈ {function, content}. The paper (1.5B model) finds
function→content hardest: 4.88, content→content 3.69, function→function 2.12, content→function 1.90.

Letters: N sequences, T positions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
import torch
import torch.nn.functional as F_nn
from torch import Tensor

from superscope.saes.result_repr import ResultRepr

from ._codes import _as_tensor

KINDS = ("function→function", "function→content", "content→function", "content→content")
PAPER_TRANSITION_LOSS = {"function→content": 4.88, "content→content": 3.69, "function→function": 2.12,
                         "content→function": 1.90}


@dataclass(frozen=True, repr=False)
class TransitionLoss(ResultRepr):
    """Mean next-token loss per transition type, with counts and the paper's values alongside."""

    mean_loss: dict  # {kind: mean loss in nats, None when the kind never occurs}
    counts: dict  # {kind: number of predictions}
    loss_share: dict  # {kind: share of the summed loss} (the paper: function→content dominates)
    paper: dict  # PAPER_TRANSITION_LOSS
    n_function_ids: int  # size of the function-token set used

    def headline(self) -> list:
        return [*((f"loss {kind}", loss, "num") for kind, loss in self.mean_loss.items()),
                ("predictions", sum(self.counts.values()), "count"), ("function tokens", self.n_function_ids, "count")]

    def to_dict(self) -> dict:
        return {k: dict(getattr(self, k)) if isinstance(getattr(self, k), dict) else getattr(self, k)
                for k in self.__dataclass_fields__}

    def figure(self) -> go.Figure:
        fig = go.Figure()
        fig.add_bar(x=list(KINDS), y=[self.mean_loss[k] for k in KINDS], name="measured")
        fig.add_bar(x=list(KINDS), y=[self.paper[k] for k in KINDS], name="paper (1.5B model)")
        fig.update_layout(title="Next-token loss by transition (current → next token type)",
                          yaxis_title="mean loss (nats)", barmode="group")
        return fig


class TransitionLossAccumulator:
    """Streams (token_ids [N, T], losses [N, T−1]) batches; sums loss and counts per transition."""

    def __init__(self, function_ids: Iterable[int]):
        self.fn_ids = torch.as_tensor(sorted({int(t) for t in function_ids}), dtype=torch.long)
        if self.fn_ids.numel() == 0:
            raise ValueError("the function-token set is empty; pass the ids from frequency_function_tokens")
        self.sums = torch.zeros(4, dtype=torch.float64)
        self.counts = torch.zeros(4, dtype=torch.long)

    def add(self, token_ids: Any, losses: Any, mask: Any = None) -> None:
        ids_NT = _as_tensor(token_ids, "token_ids").long().cpu()
        loss = _as_tensor(losses, "losses").double().cpu()
        if ids_NT.dim() == 1:
            ids_NT, loss = ids_NT[None], loss.reshape(1, -1)
        if loss.shape != (ids_NT.shape[0], ids_NT.shape[1] - 1):
            raise ValueError(f"losses must have shape [N, T-1] = {(ids_NT.shape[0], ids_NT.shape[1] - 1)} for token_ids "
                             f"{tuple(ids_NT.shape)}, got {tuple(loss.shape)}; losses[:, t] predicts token t+1")
        keep = torch.ones_like(loss, dtype=torch.bool)
        if mask is not None:
            m_NT = _as_tensor(mask, "mask").bool().cpu()
            keep = m_NT[:, :-1] & m_NT[:, 1:]
        is_fn = torch.isin(ids_NT, self.fn_ids)
        kind = (~is_fn[:, :-1]).long() * 2 + (~is_fn[:, 1:]).long()  # index into KINDS
        keep &= torch.isfinite(loss)
        self.sums += torch.zeros(4, dtype=torch.float64).index_add_(0, kind[keep], loss[keep])
        self.counts += torch.bincount(kind[keep], minlength=4)

    def result(self) -> TransitionLoss:
        total_n = int(self.counts.sum())
        if total_n == 0:
            raise ValueError("no predictions were given; pass token ids with at least two positions")
        total = float(self.sums.sum())
        mean = {k: (float(self.sums[i] / self.counts[i]) if self.counts[i] else None) for i, k in enumerate(KINDS)}
        share = {k: (float(self.sums[i]) / total if total else None) for i, k in enumerate(KINDS)}
        counts = {k: int(self.counts[i]) for i, k in enumerate(KINDS)}
        return TransitionLoss(mean, counts, share, dict(PAPER_TRANSITION_LOSS), int(self.fn_ids.numel()))


def loss_by_transition(token_ids: Any, losses: Any, function_ids: Iterable[int], mask: Any = None) -> TransitionLoss:
    """Mean next-token loss per (current → next) token type.

    token_ids `[N, T]` (or `[T]`), losses `[N, T−1]` with losses[:, t] the loss of predicting token t+1,
    optional mask `[N, T]` (1 = real token). For streams, use TransitionLossAccumulator.
    """
    acc = TransitionLossAccumulator(function_ids)
    acc.add(token_ids, losses, mask)
    return acc.result()


def next_token_losses(logits_fn: Callable[[Tensor], Tensor], token_ids: Any) -> Tensor:
    """Per-position next-token cross-entropy `[N, T−1]` from a model callable ids `[N, T]` → logits `[N, T, V]`."""
    ids_NT = _as_tensor(token_ids, "token_ids").long()
    if ids_NT.dim() == 1:
        ids_NT = ids_NT[None]
    with torch.inference_mode():
        logits_NTV = logits_fn(ids_NT)
    if logits_NTV.shape[:2] != ids_NT.shape:
        raise ValueError(f"logits_fn returned shape {tuple(logits_NTV.shape)} for ids {tuple(ids_NT.shape)}; expected [N, T, V]")
    V = logits_NTV.shape[-1]
    loss = F_nn.cross_entropy(logits_NTV[:, :-1].reshape(-1, V).float(), ids_NT[:, 1:].reshape(-1).to(logits_NTV.device),
                              reduction="none")
    return loss.reshape(ids_NT.shape[0], -1).cpu()
