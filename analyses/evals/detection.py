"""Detection scoring of token-set explanations (delphi's detection scorer, with a lookup instead of an LLM).

delphi (EleutherAI; Paulo et al. 2024, "Automatically interpreting millions of features in large
language models", arXiv 2410.13928, §3.2 "Detection") shows an LLM the explanation and a mix of
activating and non-activating examples, asks which activate, and reports balanced accuracy and F1.
Here the "LLM" is the rule itself: predict that latent f fires on a held-out token iff the token's
key (the token, or the pair (previous token, token)) is in f's explanation; the truth is whether f
fires there (code > 0 in the SAE's inference mode). Over the scoring-half tokens (odd held-out
contexts; explanations come from the even ones) we count, per latent,

    P_f = firings, TP_f = firings predicted, Q_f = tokens predicted, N = tokens scored
    TPR_f = TP_f / P_f,   FPR_f = (Q_f − TP_f) / (N − P_f)

Balanced sampling: delphi draws activating and non-activating examples in equal numbers. Instead of
drawing, we take every positive and every negative of the scoring half and weight the two classes
equally, which is what such a 1:1 sample gives in expectation, without its sampling noise:

    balanced accuracy_f = (TPR_f + 1 − FPR_f) / 2
    precision_f (1:1)   = TPR_f / (TPR_f + FPR_f),   F1_f = 2·precision·TPR / (precision + TPR)

A latent with fewer than ``min_positives`` firings in the scoring half, or without explanation
examples, is not scored (NaN). Everything is vectorised over latents: firings are the sparse codes'
nonzeros, and membership of (latent, key) pairs is a binary search over the sorted explanation pairs.

Letters: F latents, M explanation keys per latent, R scoring rows of a batch, N firings, U distinct keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from superscope.analyses.evals.explanations import explanation_half, pair_keys


@dataclass(frozen=True)
class DetectionCounts:
    """Per-latent counts over the scored tokens (see the module docstring)."""

    n_tokens: int
    positives_F: Tensor
    predicted_F: Tensor
    true_positives_F: Tensor

    def rates(self) -> tuple[Tensor, Tensor]:
        """(TPR_F, FPR_F) as float64; NaN where undefined."""
        pos = self.positives_F.double()
        neg = self.n_tokens - pos
        tpr = self.true_positives_F.double() / pos
        fpr = (self.predicted_F - self.true_positives_F).double() / neg
        return tpr, fpr

    def balanced_accuracy(self) -> Tensor:
        tpr, fpr = self.rates()
        return (tpr + 1 - fpr) / 2

    def f1(self) -> Tensor:
        """F1 at a 1:1 class ratio (the balanced sample's expectation)."""
        tpr, fpr = self.rates()
        precision = torch.where(tpr + fpr > 0, tpr / (tpr + fpr), 0.0)
        return torch.where(precision + tpr > 0, 2 * precision * tpr / (precision + tpr), 0.0)


class KeyIndex:
    """The distinct keys of all explanations, to map a token key to a compact index u (or −1)."""

    def __init__(self, keys_FM: Int[Tensor, "F M"]):
        F, M = keys_FM.shape
        self.keys_U = torch.unique(keys_FM[keys_FM >= 0])
        self.U = max(self.keys_U.numel(), 1)
        u_FM = self.lookup(keys_FM)
        # sorted (latent, key) membership codes f·U + u
        self.member = torch.unique((torch.arange(F).unsqueeze(1) * self.U + u_FM)[u_FM >= 0])
        self.u_FM = u_FM

    def lookup(self, key: Tensor) -> Tensor:
        if self.keys_U.numel() == 0:
            return torch.full_like(key, -1)
        pos = torch.searchsorted(self.keys_U, key.clamp_min(0)).clamp(max=self.keys_U.numel() - 1)
        return torch.where((key >= 0) & (self.keys_U[pos] == key), pos, -1)

    def contains(self, f_N: Tensor, u_N: Tensor) -> Tensor:
        """Whether key index u_N is in latent f_N's explanation."""
        if self.member.numel() == 0:
            return torch.zeros_like(f_N, dtype=torch.bool)
        q = f_N * self.U + u_N
        pos = torch.searchsorted(self.member, q).clamp(max=self.member.numel() - 1)
        return (u_N >= 0) & (self.member[pos] == q)


@torch.no_grad()
def detection_counts(sae: Any, source: Any, keys_FM: Int[Tensor, "F M"], use_previous_token: bool,
                     max_tokens: int | None = None, batch_size: int = 4096) -> DetectionCounts:
    """Stream the scoring half of ``source`` (held-out rows in odd contexts, corpus order, at most
    ``max_tokens`` of them) through ``sae`` and count detections for every latent."""
    F = keys_FM.shape[0]
    index = KeyIndex(keys_FM)
    contexts_CL = source.contexts()
    positives = torch.zeros(F, dtype=torch.int64)
    true_pos = torch.zeros(F, dtype=torch.int64)
    key_counts_U = torch.zeros(index.U, dtype=torch.int64)
    n = 0
    for batch in source.rows(batch_size):
        keep = ~explanation_half(batch["context_ids"])
        if max_tokens is not None:
            keep &= torch.cumsum(keep.long(), 0) <= max_tokens - n
        if not keep.any():
            if max_tokens is not None and n >= max_tokens:
                break
            continue
        ctx, pos, tok = batch["context_ids"][keep], batch["positions"][keep], batch["token_ids"][keep]
        prev = torch.where(pos > 0, contexts_CL[ctx, (pos - 1).clamp_min(0)], -1)
        u_R = index.lookup(pair_keys(prev, tok, use_previous_token))
        acts = batch["acts"][keep].to(device=sae.W_dec.device, dtype=sae.W_dec.dtype)
        codes = sae(acts).codes
        fired = codes.values_N.detach() > 0
        r_N, f_N = codes.rows()[fired].cpu(), codes.cols_N[fired].cpu()
        positives += torch.bincount(f_N, minlength=F)
        hit = index.contains(f_N, u_R[r_N])
        true_pos += torch.bincount(f_N[hit], minlength=F)
        key_counts_U += torch.bincount(u_R[u_R >= 0], minlength=index.U)
        n += int(keep.sum())
    if n == 0:
        raise ValueError("no held-out tokens in the scoring half (odd contexts): the held-out set needs at least "
                         "two contexts; harvest more held-out tokens")
    predicted = torch.where(index.u_FM >= 0, key_counts_U[index.u_FM.clamp_min(0)], 0).sum(1)
    return DetectionCounts(n, positives, predicted, true_pos)
