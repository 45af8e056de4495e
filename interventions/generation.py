"""Generate with edits, side by side with the unedited continuation.

Both continuations come from the bridge's own ``generate``, greedy or sampled from the same seed, so
with no edit they are the same tokens. The KV cache is off: with it, the bridge (TransformerLens 3.9)
continues the embedded SmolLM2 wrongly ("First," → " I-------" where a plain argmax loop and the
uncached generate both give " I was at the store."), so every step re-runs the whole sequence and the
edit hooks see every position, as in a plain forward. The per-token KL strip is KL(p_clean ‖ p_steered) of the
next-token distributions that chose each steered token: one clean and one steered forward over the
prompt + steered continuation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from superscope.saes.base import BaseSAE
from superscope.saes.result_repr import Headline, ResultRepr

from .edits import Edit
from .steering import Steering, check_edits, sae_map


@dataclass(frozen=True, repr=False)
class Generation(ResultRepr):
    """A prompt continued with and without the edits."""

    prompt: str
    edits: tuple[dict, ...]
    clean: str
    """The unedited continuation (text after the prompt)."""
    steered: str
    """The continuation with the edits applied."""
    clean_tokens: tuple[str, ...]
    steered_tokens: tuple[str, ...]
    kl_per_token: tuple[float, ...]
    """KL(p_clean ‖ p_steered) (nats) of the distribution each steered token was drawn from."""
    greedy: bool
    seed: int
    temperature: float

    @property
    def mean_kl(self) -> float:
        return float(sum(self.kl_per_token) / len(self.kl_per_token)) if self.kl_per_token else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "mean_kl": self.mean_kl}

    def headline(self) -> list[Headline]:
        return [("clean", self.clean, "text"), ("steered", self.steered, "text"), ("mean KL", self.mean_kl, "num")]


def prompt_tokens(model: Any, prompt: str | Tensor) -> Tensor:
    """[1, T] token ids on the model's device (BOS prepended to a string, as the bridge does)."""
    if isinstance(prompt, Tensor):
        tokens = prompt if prompt.ndim == 2 else prompt[None]
        return tokens.to(model.cfg.device)
    if not isinstance(prompt, str) or not prompt:
        raise ValueError("the prompt is empty: give some text to continue")
    return model.to_tokens(prompt)


def continue_tokens(model: Any, tokens: Tensor, max_new_tokens: int, greedy: bool, seed: int, temperature: float,
              top_k: int | None, stop_at_eos: bool) -> Tensor:
    """The new token ids [n] after ``tokens`` [1, T] from the bridge's cached ``generate``, seeded (CUDA too)."""
    devices = [tokens.device] if tokens.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.inference_mode():
        torch.manual_seed(seed)
        out = model.generate(tokens, max_new_tokens=max_new_tokens, do_sample=not greedy, temperature=temperature,
                             top_k=top_k, stop_at_eos=stop_at_eos, verbose=False, return_type="tokens",
                             use_past_kv_cache=False)
    return out[0, tokens.shape[1]:]


def kl_per_position(logits_p: Tensor, logits_q: Tensor) -> Tensor:
    """KL(p ‖ q) = Σ_v p_v (log p_v − log q_v) along the last axis (nats), in float32."""
    logp, logq = F.log_softmax(logits_p.float(), dim=-1), F.log_softmax(logits_q.float(), dim=-1)
    return (logp.exp() * (logp - logq)).sum(-1).clamp_min(0)


def generate(model: Any, saes: Mapping[str, BaseSAE] | Sequence[BaseSAE] | BaseSAE, edits: Sequence[Edit] | Edit,
             prompt: str | Tensor, *, max_new_tokens: int = 32, greedy: bool = True, seed: int = 0,
             temperature: float = 1.0, top_k: int | None = None, stop_at_eos: bool = True) -> Generation:
    """Continue ``prompt`` without and with the edits (same seed when sampling); return both and the KL strip."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be ≥ 1, got {max_new_tokens}")
    if not greedy and not temperature > 0:
        raise ValueError(f"temperature must be > 0 for sampling, got {temperature}")
    edits = [edits] if isinstance(edits, Edit) else list(edits)
    saes = sae_map(saes)
    check_edits(model, saes, edits)
    tokens = prompt_tokens(model, prompt)
    args = (max_new_tokens, greedy, seed, temperature, top_k, stop_at_eos)
    clean = continue_tokens(model, tokens, *args)
    with Steering(model, saes, edits, check=False):
        new = continue_tokens(model, tokens, *args)
    full = torch.cat([tokens[0], new])[None]
    with torch.inference_mode():
        logits_clean = model(full)
        with Steering(model, saes, edits, check=False):
            logits_steered = model(full)
    n0 = tokens.shape[1]
    kl = kl_per_position(logits_clean[0, n0 - 1:-1], logits_steered[0, n0 - 1:-1]) if new.numel() else new.float()
    tok = model.tokenizer
    text = prompt if isinstance(prompt, str) else tok.decode(tokens[0].tolist())
    return Generation(text, tuple(e.to_dict() for e in edits), tok.decode(clean.tolist()), tok.decode(new.tolist()),
                      tuple(tok.decode([t]) for t in clean.tolist()), tuple(tok.decode([t]) for t in new.tolist()),
                      tuple(float(v) for v in kl.tolist()), greedy, seed, float(temperature))
