"""Dose-response of one edit: sweep its α (or clamp value) and trade the effect on a target token
against the KL to the clean model (Templeton et al. 2024 steering curves; Neuronpedia's strength sweep).

For each value a, on held-out contexts truncated to ``context_len`` tokens:

    Δlogit(a) = mean over predicted positions of  logit_steered[target] − logit_clean[target]
    p(a)      = mean over predicted positions of  softmax(logit_steered)[target]
    KL(a)     = mean over predicted positions of  KL(p_clean ‖ p_steered)

All values run in one batched forward per chunk of contexts (the contexts repeated once per value, each
copy with its own value: ``Steering.values``), after one clean forward of the chunk. The target
defaults to the token the latent's decoder row promotes most directly: argmax_v (W_dec[f]·W_U)[v].
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import plotly.graph_objects as go
import torch
import torch.nn.functional as F
from plotly.subplots import make_subplots
from torch import Tensor

from superscope.saes.base import BaseSAE
from superscope.saes.result_repr import Headline, ResultRepr

from .edits import Edit
from .generation import kl_per_position
from .steering import Steering, check_edits, sae_map


@dataclass(frozen=True, repr=False)
class DoseResponse(ResultRepr):
    """Effect on a target token and KL for each value of one edit."""

    edit: dict
    target_id: int
    target: str
    values: tuple[float, ...]
    logit_delta: tuple[float, ...]
    prob: tuple[float, ...]
    prob_clean: float
    kl: tuple[float, ...]
    n_contexts: int
    context_len: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)

    def headline(self) -> list[Headline]:
        return [("target", repr(self.target), "text"), ("values", self.values, "num"),
                ("Δ target logit", self.logit_delta, "num"), ("KL", self.kl, "num"),
                ("contexts", self.n_contexts, "count")]

    def figure(self) -> go.Figure:
        e = self.edit
        fig = make_subplots(rows=1, cols=2, subplot_titles=(
            f"dose: {e['op']} f{e['latent']}", f"effect on {self.target!r} vs cost"),
            specs=[[{"secondary_y": True}, {}]])
        fig.add_trace(go.Scatter(x=self.values, y=self.prob, mode="lines+markers", name=f"p({self.target!r})"),
                      row=1, col=1)
        fig.add_trace(go.Scatter(x=self.values, y=self.kl, mode="lines+markers", name="KL(clean ‖ steered)",
                                 line={"dash": "dot"}), row=1, col=1, secondary_y=True)
        fig.add_hline(y=self.prob_clean, line={"color": "#888", "width": 1}, row=1, col=1,
                      annotation_text="clean", annotation_position="bottom right")
        fig.add_trace(go.Scatter(x=self.kl, y=self.logit_delta, mode="lines+markers+text", name="Δ logit vs KL",
                                 text=[f"{v:g}" for v in self.values], textposition="top center"), row=1, col=2)
        fig.update_xaxes(title_text="α" if e["op"] in ("add", "scale") else "clamp value", row=1, col=1)
        fig.update_yaxes(title_text=f"p({self.target!r})", row=1, col=1)
        fig.update_yaxes(title_text="KL (nats)", row=1, col=1, secondary_y=True)
        fig.update_xaxes(title_text="KL (nats)", row=1, col=2)
        fig.update_yaxes(title_text=f"Δ logit {self.target!r}", row=1, col=2)
        fig.update_layout(height=380, margin={"t": 50, "b": 40, "l": 50, "r": 30}, legend={"orientation": "h"})
        return fig


def promoted_token(model: Any, sae: BaseSAE, latent: int) -> int:
    """The token whose logit the latent's decoder row raises most directly: argmax_v (W_dec[f]·W_U)[v]."""
    w_U = model.W_U
    return int((sae.W_dec[latent].to(w_U) @ w_U).argmax())


@torch.no_grad()
def dose_response(model: Any, saes: Mapping[str, BaseSAE] | Sequence[BaseSAE] | BaseSAE, edit: Edit,
                  values: Sequence[float], contexts: Tensor, *, target: int | None = None, context_len: int = 32,
                  max_rows: int = 32) -> DoseResponse:
    """Sweep ``edit``'s value over ``values`` on ``contexts`` [n, T] (truncated to ``context_len``); at most
    ``max_rows`` rows (contexts × values) per forward."""
    import time

    start = time.perf_counter()
    saes = sae_map(saes)
    values = [float(v) for v in values]
    if not values or not all(math.isfinite(v) for v in values):
        raise ValueError(f"dose-response values must be finite numbers, got {values}")
    check_edits(model, saes, [edit])
    if contexts.ndim != 2 or contexts.shape[0] == 0 or min(contexts.shape[1], context_len) < 2:
        raise ValueError(f"contexts must be [n ≥ 1, T ≥ 2] token ids, got shape {list(contexts.shape)}")
    target = promoted_token(model, saes[edit.hook], edit.latent) if target is None else int(target)
    if not 0 <= target < model.cfg.d_vocab:
        raise ValueError(f"target token id {target} out of range (vocabulary of {model.cfg.d_vocab})")
    bos = getattr(model.tokenizer, "bos_token_id", None)
    A = len(values)
    contexts = contexts[:, :context_len].long().to(model.cfg.device)
    per_chunk = max(1, max_rows // A)
    sums = torch.zeros(3, A, dtype=torch.float64)  # Δlogit, p, KL
    p_clean_sum, n = 0.0, 0
    steering = Steering(model, saes, [edit], check=False)
    steering.groups = A
    for chunk in contexts.split(per_chunk):
        c = chunk.shape[0]
        mask_cT = chunk[:, :-1] != bos if bos is not None else torch.ones_like(chunk[:, :-1], dtype=torch.bool)
        clean = model(chunk)[:, :-1]
        batch = chunk.repeat(A, 1)  # value a occupies rows a·c … (a+1)·c − 1
        steering.values = {0: torch.tensor(values, device=chunk.device).repeat_interleave(c)}
        with steering:
            steered = model(batch)[:, :-1].reshape(A, c, *clean.shape[1:])
        mask = mask_cT[None].expand(A, -1, -1)
        d_logit = steered[..., target] - clean[None, ..., target]
        p = F.softmax(steered.float(), dim=-1)[..., target]
        kl = kl_per_position(clean[None].expand_as(steered), steered)
        for row, t in enumerate((d_logit, p, kl)):
            sums[row] += torch.where(mask, t.double(), 0.0).sum(dim=(1, 2)).cpu()
        p_clean_sum += float(F.softmax(clean.float(), dim=-1)[..., target][mask_cT].sum())
        n += int(mask_cT.sum())
    if n == 0:
        raise ValueError("the contexts hold no predicted non-BOS positions")
    means = (sums / n).tolist()
    return DoseResponse(edit.to_dict(), target, model.tokenizer.decode([target]), tuple(values), tuple(means[0]),
                        tuple(means[1]), p_clean_sum / n, tuple(means[2]), int(contexts.shape[0]),
                        int(contexts.shape[1]), time.perf_counter() - start)
