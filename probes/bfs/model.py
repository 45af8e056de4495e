"""A GPT-2-style decoder written with plain torch modules, with a KV cache and attention read-out.

Pre-LN blocks (Radford et al. 2019): x += Attn(LN1(x)); x += MLP(LN2(x)); h = LN_f(x);
logits = h · W_Eᵀ with the LM head tied to the input embedding W_E (as in GPT-2), so the probe's
score ⟨t_i, E[v]⟩ is exactly the logit of node v read from thought t_i.

Shape letters: B batch, T new positions, S all key positions (cache + new), H heads, K head dim,
D d_model, V vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn


@dataclass
class ModelConfig:
    """Size of the decoder (Zhu et al. 2025 use 2 layers, 8 heads, d_model 768)."""

    vocab_size: int = 32
    """Node tokens + specials (see tokens.Vocab.size)."""
    n_layers: int = 2
    """Transformer blocks."""
    n_heads: int = 4
    """Attention heads per block."""
    d_model: int = 128
    """Residual-stream width."""
    d_mlp: int = 512
    """Hidden width of each MLP."""
    max_len: int = 128
    """Learned positions available (prompt + thoughts + answer)."""
    dropout: float = 0.0
    """Dropout on attention probabilities and residual branches while training."""
    positions: Literal["learned", "rotary"] = "learned"
    """GPT-2's learned absolute position embeddings, or rotary ones on queries/keys (Su et al. 2021)."""
    thought_gain: float = 1.0
    """Initial value of the learned scalar g that multiplies a continuous thought when it is fed back
    (input = g · h, h the post-final-norm hidden state). 1.0 is plain Coconut; the CPU recipe starts
    at the token-embedding init scale (0.02); see GPT.feed_back."""

    def __post_init__(self) -> None:
        if self.d_model % (2 * self.n_heads):
            raise ValueError(f"d_model={self.d_model} must be divisible by 2 * n_heads={2 * self.n_heads}")
        if min(self.vocab_size, self.n_layers, self.n_heads, self.d_model, self.d_mlp, self.max_len) < 1:
            raise ValueError("all sizes in ModelConfig must be positive")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must lie in [0, 1)")
        if not self.thought_gain > 0.0:
            raise ValueError("thought_gain must be > 0 (1.0 feeds the hidden state back unscaled)")

    def to_dict(self) -> dict:
        return asdict(self)


KVCache = list[tuple[Tensor, Tensor]]  # per layer: keys, values [B, H, S, K]


class ForwardOut(NamedTuple):
    hidden: Float[Tensor, "B T D"]
    """Last-layer hidden states after the final LayerNorm (a Coconut thought is one of these)."""
    cache: KVCache
    """Keys/values of every position so far, to continue from."""
    attn: list[Tensor] | None
    """Per layer, attention probabilities [B, H, T, S] (only when asked for)."""


def rotary_angles(pos_BT: Tensor, head_dim: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """cos, sin [B, 1, T, K/2] of the rotary angles pos · base^(−2j/K)."""
    half = head_dim // 2
    freq = base ** (-torch.arange(half, device=pos_BT.device, dtype=torch.float32) / half)
    ang = pos_BT[:, None, :, None].float() * freq
    return ang.cos(), ang.sin()


def rotate(x_BHTK: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate channel pairs (j, j + K/2) by the position's angles (RoFormer, Su et al. 2021)."""
    x1, x2 = x_BHTK.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.fc, self.fc_out = nn.Linear(cfg.d_model, cfg.d_mlp), nn.Linear(cfg.d_mlp, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x_BTD: Tensor, allow_BTS: Tensor, past: tuple[Tensor, Tensor] | None,
                need_weights: bool, rot: tuple[Tensor, Tensor] | None) -> tuple[Tensor, tuple[Tensor, Tensor], Tensor | None]:
        B, T, D = x_BTD.shape
        q, k, v = self.qkv(self.ln1(x_BTD)).split(D, dim=-1)
        q, k, v = (z.view(B, T, self.n_heads, D // self.n_heads).transpose(1, 2) for z in (q, k, v))
        if rot is not None:  # cached keys were rotated when they were new
            q, k = rotate(q, *rot), rotate(k, *rot)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        scores_BHTS = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        scores_BHTS = scores_BHTS.masked_fill(~allow_BTS[:, None], float("-inf"))
        probs_BHTS = scores_BHTS.softmax(dim=-1)
        out = (self.drop(probs_BHTS) @ v).transpose(1, 2).reshape(B, T, D)
        x_BTD = x_BTD + self.drop(self.proj(out))
        x_BTD = x_BTD + self.drop(self.fc_out(F.gelu(self.fc(self.ln2(x_BTD)), approximate="tanh")))
        return x_BTD, (k, v), (probs_BHTS if need_weights else None)


class GPT(nn.Module):
    """Decoder over input *embeddings*, so a continuous thought can stand in for a token."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.W_E = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.W_pos = nn.Embedding(cfg.max_len, cfg.d_model) if cfg.positions == "learned" else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.thought_gain = nn.Parameter(torch.tensor(float(cfg.thought_gain)))
        self.apply(self._init)
        for blk in self.blocks:  # GPT-2: residual projections scaled by 1/sqrt(2 n_layers)
            for lin in (blk.proj, blk.fc_out):
                nn.init.normal_(lin.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)

    def embed(self, ids: Int[Tensor, "B T"]) -> Float[Tensor, "B T D"]:
        return self.W_E(ids)

    def feed_back(self, hidden: Float[Tensor, "... D"]) -> Float[Tensor, "... D"]:
        """Input embedding of the next slot made from a continuous thought: g · h (Coconut: g = 1).

        h is the last hidden state after the final LayerNorm, so its norm is about sqrt(D) times the
        LN gain, while token embeddings start at std 0.02 (norm 0.02·sqrt(D)): unscaled, a thought
        enters ~50× larger than a token. The learned scalar g (init ModelConfig.thought_gain) lets
        training set the ratio; the thought itself (the probe's t_i) is still h, and a positive
        scalar changes no inner-product ordering. Measured on the CPU recipe, g = 0.02 and g = 1.0
        at init train equally well (96.65 % vs 96.25 % test; g ends ≈ 0.8 and ≈ 1.0).
        """
        return self.thought_gain * hidden

    def logits(self, hidden: Float[Tensor, "B T D"]) -> Float[Tensor, "B T V"]:
        return hidden @ self.W_E.weight.T

    def forward(
        self,
        x_BTD: Float[Tensor, "B T D"],
        pos_BT: Int[Tensor, "B T"],
        key_ok_BS: Bool[Tensor, "B S"],
        cache: KVCache | None = None,
        need_weights: bool = False,
    ) -> ForwardOut:
        """Run T new positions after the cached ones.

        key_ok_BS marks real (non-padding) keys over all S = cached + T positions; a query sees the
        keys at or before its own column that are real, and always itself (so padding rows stay finite).
        """
        T = x_BTD.shape[1]
        S = key_ok_BS.shape[1]
        if int(pos_BT.max()) >= self.cfg.max_len:
            raise ValueError(f"sequence needs position {int(pos_BT.max())} >= max_len={self.cfg.max_len}; "
                             "raise ModelConfig.max_len")
        col_T = torch.arange(S - T, S, device=x_BTD.device)
        col_S = torch.arange(S, device=x_BTD.device)
        causal_TS = col_S[None, :] <= col_T[:, None]
        allow_BTS = (causal_TS[None] & key_ok_BS[:, None, :]) | (col_S[None, None, :] == col_T[None, :, None])
        if self.W_pos is not None:
            x, rot = self.drop(x_BTD + self.W_pos(pos_BT)), None
        else:
            x, rot = self.drop(x_BTD), rotary_angles(pos_BT, self.cfg.d_model // self.cfg.n_heads)
        new_cache, attn = [], ([] if need_weights else None)
        for i, blk in enumerate(self.blocks):
            x, kv, probs = blk(x, allow_BTS, None if cache is None else cache[i], need_weights, rot)
            new_cache.append(kv)
            if need_weights:
                attn.append(probs)
        return ForwardOut(self.ln_f(x), new_cache, attn)


def pick_device(device: Literal["cpu", "cuda"]) -> torch.device:
    """torch.device for the option, with a clear error when CUDA is asked for but absent."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but torch sees no GPU; use device='cpu'")
    return torch.device(device)
