"""Chain of continuous thought (Coconut; Hao et al. 2024, Sec. 3) over a batch of left-padded prompts.

A continuous thought is the last hidden state *after the final LayerNorm* at one position, fed back
as the input embedding of the next position:  t_1 = h(root column),  t_{i+1} = h(column of t_i);
the slot receives g · t_i with g a learned scalar (GPT.feed_back; g = 1 is plain Coconut).
After k thoughts come ordinary tokens (the tail): at the last curriculum stage "[A]", whose output
is the answer; at earlier stages the rest of a shortest path, then "[A]" (Hao et al. 2024, Sec. 3:
stage k replaces the first k reasoning steps by k thoughts). The output at the last thought column
predicts the next node, i.e. it is t_{k+1} read through the tied LM head.

`coconut_forward` runs the prompt once and each thought column as one cached step, so samples with
different thought counts share a batch. `coconut_reference` is the plain spec: one sample, every
step recomputes the whole sequence from embeddings. Tests hold the two equal.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from .model import GPT
from .tokens import Vocab

# Letters: B batch, P prompt columns, J steps after the prompt, D d_model, H heads, L layers.


class PromptBatch(NamedTuple):
    ids: Int[Tensor, "B P"]
    """Prompt tokens, left-padded so every root sits in the last column."""
    ok: Bool[Tensor, "B P"]
    """True on real tokens."""
    pos: Int[Tensor, "B P"]
    """Position ids counted from each prompt's first real token."""
    n_real: Int[Tensor, " B"]
    """Real prompt length of each sample."""


def collate_prompts(prompts: list[list[int]] | list[tuple[int, ...]], vocab: Vocab,
                    device: torch.device | str = "cpu") -> PromptBatch:
    P = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), P), vocab.PAD, dtype=torch.long)
    for b, p in enumerate(prompts):
        ids[b, P - len(p):] = torch.tensor(p, dtype=torch.long)
    ok = ids != vocab.PAD
    pos = (ok.long().cumsum(1) - 1).clamp(min=0)
    return PromptBatch(ids.to(device), ok.to(device), pos.to(device), ok.sum(1).to(device))


class CoconutOut(NamedTuple):
    hidden: Float[Tensor, "B J+1 D"]
    """Output (post-final-norm) of the root column (step 0) and of each later column (steps 1..J)."""
    thought_attn: list[Tensor] | None
    """Per layer [B, H, K, P]: attention of step columns 1..K (K = max thoughts) over the prompt."""


def _step_inputs(model: GPT, prev_BD: Tensor, j: int, n_thoughts: Tensor, tail_BM: Tensor) -> Tensor:
    """Input of step column j: the previous output while j <= n_thoughts, else the next tail token."""
    t_idx = (j - n_thoughts - 1).clamp(0, tail_BM.shape[1] - 1)
    tok_BD = model.embed(tail_BM.gather(1, t_idx[:, None])[:, 0])
    return torch.where((j <= n_thoughts)[:, None], model.feed_back(prev_BD), tok_BD)


def coconut_forward(
    model: GPT,
    batch: PromptBatch,
    n_thoughts: Int[Tensor, " B"],
    tail: Int[Tensor, "B M"],
    vocab: Vocab,
    need_weights: bool = False,
) -> CoconutOut:
    """Prompt, then n_thoughts[b] continuous thoughts, then the tokens tail[b] (PAD-padded on the right).

    Columns 1..K (K = max n_thoughts) run one at a time, since a thought is only known once the
    column before it has run; the remaining columns hold only tokens and run as one chunk.
    """
    out = model(model.embed(batch.ids), batch.pos, batch.ok)
    cache, key_ok, steps = out.cache, batch.ok, [out.hidden[:, -1:]]
    K = int(n_thoughts.max()) if n_thoughts.numel() else 0
    J = max(K, int((n_thoughts + (tail != vocab.PAD).sum(1)).max()))
    attn_steps: list[list[Tensor]] = [[] for _ in model.blocks]
    P = batch.ids.shape[1]
    for j in range(1, K + 1):
        x_BD = _step_inputs(model, steps[-1][:, -1], j, n_thoughts, tail)
        key_ok = torch.cat([key_ok, torch.ones_like(key_ok[:, :1])], dim=1)  # later slots: real or trailing
        o = model(x_BD[:, None], (batch.n_real + j - 1)[:, None], key_ok, cache, need_weights)
        cache = o.cache
        steps.append(o.hidden)
        for layer, a in enumerate(o.attn or []):
            attn_steps[layer].append(a[:, :, 0, :P])
    if J > K:  # token-only columns: one chunk
        x = torch.stack([_step_inputs(model, steps[-1][:, -1], j, n_thoughts, tail) for j in range(K + 1, J + 1)], 1)
        key_ok = torch.cat([key_ok, torch.ones_like(key_ok[:, :1]).expand(-1, J - K)], dim=1)
        pos = batch.n_real[:, None] - 1 + torch.arange(K + 1, J + 1, device=x.device)[None]
        steps.append(model(x, pos, key_ok, cache).hidden)
    thought_attn = [torch.stack(a, dim=2) for a in attn_steps] if need_weights and K > 0 else None
    return CoconutOut(torch.cat(steps, dim=1), thought_attn)


@torch.no_grad()
def coconut_reference(model: GPT, prompt: list[int], n_thoughts: int, tail: list[int]) -> Float[Tensor, "J+1 D"]:
    """Step-by-step spec for one unpadded prompt: recompute everything after each new column."""
    dev = model.W_E.weight.device
    x = model.embed(torch.tensor([prompt], device=dev))  # [1, T, D]
    outs = []
    for step in range(n_thoughts + len(tail) + 1):
        T = x.shape[1]
        h = model(x, torch.arange(T, device=dev)[None], torch.ones(1, T, dtype=torch.bool, device=dev)).hidden
        outs.append(h[0, -1])
        if step < n_thoughts:
            nxt = model.feed_back(h[:, -1:])
        elif step < n_thoughts + len(tail):
            nxt = model.embed(torch.tensor([[tail[step - n_thoughts]]], device=dev))
        else:
            break
        x = torch.cat([x, nxt], dim=1)
    return torch.stack(outs)
