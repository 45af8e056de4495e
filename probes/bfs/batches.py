"""Training batches and losses for the three methods (Coconut, CoT, No-CoT).

Every sample is: prompt, k continuous thoughts (k = 0 for CoT / No-CoT), then a tail of tokens.
Coconut at stage k (Hao et al. 2024, Sec. 3): the first k reasoning steps are replaced by k
thoughts, and the rest is supervised as language: the remaining shortest path n_{k+1} … n_h,
then [A], then the target. The first supervised prediction (at the last thought column) is the
"next node on a shortest path" of Zhu et al. 2025; the "bfs" variant supervises that one prediction
with the whole Frontier(k+1) instead (the tail after it is the same). CoT is the k = 0 case (the
whole path, then [A] answer); No-CoT is "[A] answer" straight after the root.

Labels are sets of valid tokens (all shortest-path successors of the current node, all of
Optimal(k+1) after the thoughts); the loss is the cross-entropy against the uniform distribution
on each set, the expectation of the one-random-path objective of the reference code (same optimum,
lower variance).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

from .coconut import coconut_forward, collate_prompts
from .generator import Problem
from .model import GPT
from .tokens import Vocab, encode_prompt, shortest_path

Supervision = Literal["shortest_path", "bfs"]
Method = Literal["coconut", "cot", "nocot"]


def make_tail(p: Problem, k: int, method: Method, supervision: Supervision, vocab: Vocab,
              rng: np.random.Generator | None) -> tuple[list[int], list[frozenset[int]]]:
    """Tail tokens after k thoughts, and the label sets of the len(tail) + 1 predictions.

    Prediction 0 is read at the last thought column (the root column when k = 0), prediction t at
    tail token t-1.
    """
    if not 0 <= k <= p.hops:
        raise ValueError(f"n_thoughts={k} outside 0..hops={p.hops}")
    if method == "nocot":
        return [vocab.A], [frozenset({vocab.A}), frozenset({p.target})]
    if k == p.hops:
        return [vocab.A], [frozenset({vocab.A}), frozenset({p.target})]
    path = shortest_path(p, rng)  # n_1 … n_h (n_h = target)
    succ: dict[int, set[int]] = {}
    for a, b in p.edges:
        succ.setdefault(a, set()).add(b)
    labels = [p.optimal(k + 1) if supervision == "shortest_path" else p.frontier(k + 1)]
    for j in range(k + 1, p.hops):  # at n_j: its successors on shortest paths
        labels.append(frozenset(succ[path[j - 1]] & p.optimal(j + 1)))
    labels += [frozenset({vocab.A}), frozenset({p.target})]
    return path[k:] + [vocab.A], labels


def sequence_loss(model: GPT, problems: list[Problem], n_thoughts: list[int], method: Method,
                  supervision: Supervision, vocab: Vocab, rng: np.random.Generator | None) -> Tensor:
    """Mean cross-entropy over all labelled predictions of the batch (thoughts, then the tail)."""
    dev = model.W_E.weight.device
    tails = [make_tail(p, k, method, supervision, vocab, rng) for p, k in zip(problems, n_thoughts)]
    batch = collate_prompts([encode_prompt(p, vocab, rng).ids for p in problems], vocab, dev)
    M = max(1, max(len(t) for t, _ in tails))
    tail = torch.full((len(problems), M), vocab.PAD, dtype=torch.long)
    for b, (t, _) in enumerate(tails):
        tail[b, : len(t)] = torch.tensor(t, dtype=torch.long)
    k_B = torch.tensor(n_thoughts, device=dev)
    hidden = coconut_forward(model, batch, k_B, tail.to(dev), vocab).hidden
    q = torch.zeros(hidden.shape[0], hidden.shape[1], vocab.size)
    for b, (k, (_, labels)) in enumerate(zip(n_thoughts, tails)):
        for t, allowed in enumerate(labels):
            q[b, k + t, sorted(allowed)] = 1.0 / len(allowed)
    logp = model.logits(hidden).log_softmax(-1)
    n_labels = sum(len(lab) for _, lab in tails)
    return -(q.to(dev) * logp).sum() / n_labels
