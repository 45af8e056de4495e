"""Stream activations straight from the model into a trainer, through a shuffling buffer (no disk).

    for each batch of contexts: one early-stopped forward → non-BOS rows → ShuffleBuffer → [B, d] batches

Memory is bounded by the buffer (``buffer_tokens`` rows) whatever ``n_tokens`` is; each call runs the
model again (use ``harvest(..., out_dir=...)`` to reuse activations across epochs or SAEs).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from .buffer import ShuffleBuffer
from .capture import Capture
from .corpus import DEFAULT_CONTEXT_LEN, Corpus, as_corpus, bos_id, iter_contexts
from .hooks import validate_hooks

__all__ = ["stream_activations"]


def stream_activations(model: Any, hook: str, n_tokens: int, corpus: Corpus | str | None = None,
                       batch_size: int = 4096, forward_batch: int = 16, context_len: int = DEFAULT_CONTEXT_LEN,
                       seed: int = 0, buffer_tokens: int = 2**16, keep_bos: bool = False,
                       drop_last: bool = False) -> Iterator[Float[Tensor, "batch d"]]:
    """Shuffled float32 batches ``[batch_size, d]`` of ``hook``'s activations over ⌈n_tokens / context_len⌉
    contexts of ``corpus`` (the same contexts ``harvest`` reads with the same seed). ``forward_batch``:
    contexts per forward pass. BOS positions are dropped unless ``keep_bos``."""
    (hook,) = validate_hooks(model, [hook])
    if n_tokens < 1 or forward_batch < 1:
        raise ValueError(f"n_tokens and forward_batch must be positive, got {n_tokens} and {forward_batch}")
    bos = bos_id(model.tokenizer)
    n_contexts = math.ceil(n_tokens / context_len)
    contexts = itertools.islice(iter_contexts(model.tokenizer, as_corpus(corpus), context_len, seed), n_contexts)
    buffer = ShuffleBuffer(max(buffer_tokens, batch_size), batch_size, seed, drop_last)
    with Capture(model, [hook]) as capture:
        while rows := list(itertools.islice(contexts, forward_batch)):
            tokens = torch.from_numpy(np.stack(rows))
            acts = capture.run(tokens)[hook].to("cpu", torch.float32)
            keep = torch.ones_like(tokens, dtype=torch.bool) if keep_bos else tokens != bos
            for (batch,) in buffer.push(acts.reshape(*tokens.shape, -1)[keep]):
                yield batch
    for (batch,) in buffer.flush():
        yield batch
