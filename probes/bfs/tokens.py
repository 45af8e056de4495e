"""Token layout and sequence formats of the reachability task (one token per node).

Ids 0..n_node_tokens-1 are the nodes themselves; the specials follow. A prompt reads
    <bos> (s t |)* [Q] c1 c2 [R] root
and the three methods continue it as
    Coconut:  <thought>×k [A] answer          (thought slots are filled with hidden states)
    CoT:      n1 n2 … n_h [A] answer <eos>    (a shortest path written out node by node)
    No-CoT:   [A] answer <eos>
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .generator import Problem

SPECIALS = ("<pad>", "<bos>", "|", "[Q]", "[R]", "[A]", "<thought>", "<eos>")


def _special(k: int) -> property:
    return property(lambda self: self.n_node_tokens + k, doc=f"token id of {SPECIALS[k]}")


@dataclass(frozen=True)
class Vocab:
    """Node tokens first, then SPECIALS."""

    n_node_tokens: int

    PAD, BOS, SEP, Q, R, A, THOUGHT, EOS = (_special(k) for k in range(len(SPECIALS)))

    @property
    def size(self) -> int:
        return self.n_node_tokens + len(SPECIALS)

    def decode(self, ids) -> str:
        return " ".join(str(i) if i < self.n_node_tokens else SPECIALS[i - self.n_node_tokens] for i in ids)


@dataclass(frozen=True)
class Prompt:
    """A tokenised prompt and where each edge sits in it (for the attention probe)."""

    ids: tuple[int, ...]
    edge_starts: tuple[int, ...]
    """Column of each edge's source token; the edge owns columns start, start+1 (target), start+2 (|)."""
    edges: tuple[tuple[int, int], ...]
    """Edges in the order shown."""


def encode_prompt(problem: Problem, vocab: Vocab, rng: np.random.Generator | None = None) -> Prompt:
    """The prompt; with `rng`, edges and candidates are reshuffled (fresh order every epoch)."""
    edges, cands = list(problem.edges), list(problem.candidates)
    if rng is not None:
        edges = [edges[i] for i in rng.permutation(len(edges))]
        if rng.random() < 0.5:
            cands = cands[::-1]
    ids, starts = [vocab.BOS], []
    for s, t in edges:
        starts.append(len(ids))
        ids += [s, t, vocab.SEP]
    ids += [vocab.Q, cands[0], cands[1], vocab.R, problem.root]
    return Prompt(ids=tuple(ids), edge_starts=tuple(starts), edges=tuple(edges))


def shortest_path(problem: Problem, rng: np.random.Generator | None = None) -> list[int]:
    """A shortest root -> target path (excluding the root); random among ties when `rng` is given."""
    succ: dict[int, list[int]] = {}
    for s, t in problem.edges:
        succ.setdefault(s, []).append(t)
    path, cur = [], problem.root
    for i in range(1, problem.hops + 1):
        options = sorted(v for v in succ.get(cur, []) if v in problem.optimal(i))
        cur = options[int(rng.integers(len(options)))] if rng is not None else options[0]
        path.append(cur)
    return path


def cot_tail(problem: Problem, vocab: Vocab, rng: np.random.Generator | None = None) -> list[int]:
    """CoT continuation: the path node by node, then [A] answer <eos>."""
    return shortest_path(problem, rng) + [vocab.A, problem.target, vocab.EOS]


def nocot_tail(problem: Problem, vocab: Vocab) -> list[int]:
    """No-CoT continuation: [A] answer <eos>."""
    return [vocab.A, problem.target, vocab.EOS]
