"""One activation vector per text at a hook (last-token or mean pooling), harvested once and cached.

For a text with tokens x_1 … x_T (its first ``max_tokens`` tokens, after a BOS token x_0 as in every
harvested context) and the hook's activation h_t at position t:

    last:  a = h_T                          (the last kept token; sae-probes reads the last token,
                                              Kantamneni et al. 2025; so does Gurnee et al. 2023's probing)
    mean:  a = (1/T) Σ_{t=1..T} h_t          (BOS excluded: its activation is a huge outlier)

Texts are forwarded in batches sorted by length and right-padded. Right padding is exact without an
attention mask: attention is causal, so h_t depends on x_0 … x_t only and the pads after a text change
nothing at its positions. Each forward stops after the hook (``activations.capture.Capture``).

The vectors are cached in a safetensors file whose metadata holds a fingerprint of (model, hook,
pooling, max_tokens, texts); a file with another fingerprint is recomputed and replaced (atomically).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import torch
from jaxtyping import Float
from torch import Tensor

from superscope.activations.capture import Capture
from superscope.activations.corpus import bos_id
from superscope.activations.hooks import validate_hooks
from superscope.activations.models import model_id
from superscope.saes.atomic_io import read_safetensors, write_safetensors

__all__ = ["Pooling", "fingerprint", "text_activations", "tokenize_texts"]

Pooling = Literal["last", "mean"]
POOLINGS = ("last", "mean")


def tokenize_texts(tokenizer: Any, texts: list[str] | tuple[str, ...], max_tokens: int) -> list[list[int]]:
    """``[BOS] + tokens[:max_tokens]`` of each text (no other special tokens)."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be ≥ 1, got {max_tokens}")
    bos = bos_id(tokenizer)
    ids = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
    out = []
    for i, row in enumerate(ids):
        if not row:
            raise ValueError(f"text {i} ({texts[i][:40]!r}) has no tokens; drop empty texts before harvesting")
        out.append([bos, *row[:max_tokens]])
    return out


def fingerprint(model: Any, hook: str, texts: list[str] | tuple[str, ...], pooling: str, max_tokens: int) -> str:
    """SHA-256 of everything the vectors depend on (the cache key stored in the file's metadata)."""
    digest = hashlib.sha256(json.dumps([model_id(model), hook, pooling, max_tokens]).encode())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()


def _pool(acts_BTD: Tensor, lengths_B: Tensor, pooling: str) -> Tensor:
    """Pool positions 1 … len−1 of each row (position 0 is BOS; len counts it)."""
    B, T = acts_BTD.shape[:2]
    if pooling == "last":
        return acts_BTD[torch.arange(B, device=acts_BTD.device), lengths_B - 1]
    pos_T = torch.arange(T, device=acts_BTD.device)
    keep_BT = ((pos_T >= 1) & (pos_T < lengths_B[:, None])).to(acts_BTD.dtype)
    return (acts_BTD * keep_BT[..., None]).sum(1) / keep_BT.sum(1, keepdim=True)


def _harvest(model: Any, hook: str, token_ids: list[list[int]], pooling: str, batch_size: int) -> Tensor:
    order = sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))
    bos = token_ids[0][0]
    out: list[Tensor] = [torch.empty(0)] * len(token_ids)
    with Capture(model, [hook]) as capture:
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            lengths_B = torch.tensor([len(token_ids[i]) for i in rows])
            tokens_BT = torch.full((len(rows), int(lengths_B.max())), bos, dtype=torch.long)
            for b, i in enumerate(rows):
                tokens_BT[b, :len(token_ids[i])] = torch.tensor(token_ids[i])
            acts = capture.run(tokens_BT)[hook]
            acts_BTD = acts.reshape(*acts.shape[:2], -1).float()
            pooled_BD = _pool(acts_BTD, lengths_B.to(acts_BTD.device), pooling).cpu()
            for b, i in enumerate(rows):
                out[i] = pooled_BD[b]
    return torch.stack(out)


def text_activations(model: Any, hook: str, texts: list[str] | tuple[str, ...], pooling: Pooling = "last",
                     max_tokens: int = 128, batch_size: int = 32,
                     cache: str | Path | None = None) -> Float[Tensor, "n_texts d"]:
    """One float32 vector per text at ``hook`` of ``model`` (on the CPU), pooled as the module docstring
    states; read from ``cache`` (a ``.safetensors`` path) when it holds these texts' vectors, else
    harvested and written there."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if not texts:
        raise ValueError("no texts to harvest: the split is empty")
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    hook = validate_hooks(model, hook)[0]
    key = fingerprint(model, hook, texts, pooling, max_tokens)
    if cache is not None and Path(cache).is_file():
        from safetensors import safe_open

        with safe_open(str(cache), framework="pt") as f:
            stored = (f.metadata() or {}).get("fingerprint")
        if stored == key:
            return read_safetensors(cache, "cached text activations")["acts"]
    acts = _harvest(model, hook, tokenize_texts(model.tokenizer, texts, max_tokens), pooling, batch_size)
    if cache is not None:
        write_safetensors(cache, {"acts": acts.contiguous()},
                          {"fingerprint": key, "hook": hook, "pooling": pooling, "max_tokens": str(max_tokens),
                           "model": model_id(model), "n_texts": str(len(texts))})
    return acts
