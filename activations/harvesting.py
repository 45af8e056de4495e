"""Harvest activations at one or many hooks, one early-stopped forward pass per batch of contexts.

    for each shard i (contexts [i·C, (i+1)·C) of the corpus stream):
        for each batch of ≤ batch_size contexts:   one forward, stopped after the deepest hook
        rows = positions whose token is not BOS (all positions with keep_bos=True)
        → shard i of every hook (written to out_dir/<hook>/, or kept in memory)

Memory is bounded by one shard per hook (``contexts_per_shard``; ~64 MiB for all hooks together by
default) whatever ``n_tokens`` is. With ``out_dir`` an interrupted harvest resumes after the last complete shard: the
contexts of shard i are fixed by (corpus, seed, context_len, C), so no token is lost or duplicated.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from .capture import Capture, hook_shapes, width
from .corpus import DEFAULT_CONTEXT_LEN, Corpus, as_corpus, bos_id, iter_contexts
from .hooks import validate_hooks
from .models import model_id
from .shards import MANIFEST, STORE_DTYPES, ShardSource, ShardWriter
from .source import ActivationSource, MemorySource

__all__ = ["harvest", "load_activations"]

SHARD_BYTES = 64 * 2**20


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in ("superscope", "torch", "transformers", "transformer-lens"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def _rows(tokens: Tensor, acts: Tensor, context_start: int, bos: int, keep_bos: bool) -> dict[str, Tensor]:
    """Flatten ``acts [b, T, ...]`` to the rows kept for training, with their token ids and locations."""
    b, T = tokens.shape
    keep = torch.ones_like(tokens, dtype=torch.bool) if keep_bos else tokens != bos
    ctx = (context_start + torch.arange(b)).unsqueeze(1).expand(b, T)
    pos = torch.arange(T).unsqueeze(0).expand(b, T)
    return {"acts": acts.reshape(b, T, -1)[keep], "token_ids": tokens[keep], "context_ids": ctx[keep],
            "positions": pos[keep]}


def _merge(pieces: list[dict[str, Tensor]], contexts: Tensor) -> dict[str, Tensor]:
    part = {k: torch.cat([p[k] for p in pieces]) for k in pieces[0]}
    part["contexts"] = contexts
    return part


def _check_args(n_tokens: int, batch_size: int, context_len: int, model: Any, dtype: str) -> None:
    if n_tokens < 1 or batch_size < 1:
        raise ValueError(f"n_tokens and batch_size must be positive, got {n_tokens} and {batch_size}")
    n_ctx = getattr(model.cfg, "n_ctx", None)
    if context_len < 2 or (n_ctx and context_len > n_ctx):
        raise ValueError(f"context_len must be in [2, {n_ctx}] for this model, got {context_len}")
    if dtype not in STORE_DTYPES:
        raise ValueError(f"dtype must be one of {sorted(STORE_DTYPES)}, got {dtype!r}")


class HarvestPlan(NamedTuple):
    """The validated settings of a harvest (also used by ``distributed_harvest``)."""

    hooks: list[str]
    corpus: Corpus
    bos: int
    n_contexts: int
    contexts_per_shard: int
    n_shards: int
    meta: dict[str, dict[str, Any]]
    """Per hook: the settings recorded in its manifest (a resume must match them)."""


def plan_harvest(model: Any, hooks: list[str] | str, n_tokens: int, corpus: Corpus | str | None, batch_size: int,
                 context_len: int, seed: int, keep_bos: bool, dtype: str, contexts_per_shard: int | None) -> HarvestPlan:
    """Check the arguments of ``harvest`` and derive its shard layout and manifest settings."""
    hooks = validate_hooks(model, hooks)
    _check_args(n_tokens, batch_size, context_len, model, dtype)
    corpus = as_corpus(corpus)
    bos = bos_id(model.tokenizer)
    shapes = hook_shapes(model, hooks, bos)
    n_contexts = math.ceil(n_tokens / context_len)
    itemsize = STORE_DTYPES[dtype].itemsize
    # SHARD_BYTES for all hooks together: memory stays bounded however many hooks are harvested at once
    cps = contexts_per_shard or max(1, SHARD_BYTES // (context_len * sum(map(width, shapes.values())) * itemsize))
    n_shards = math.ceil(n_contexts / cps)
    common = {"model": model_id(model), "corpus": corpus.describe(), "seed": seed, "context_len": context_len,
              "contexts_per_shard": cps, "n_contexts": n_contexts, "n_tokens_requested": n_tokens,
              "keep_bos": keep_bos, "bos_token_id": bos, "dtype": dtype}
    meta = {h: {**common, "hook": h, "d": width(shapes[h]), "shape": list(shapes[h])} for h in hooks}
    return HarvestPlan(hooks, corpus, bos, n_contexts, cps, n_shards, meta)


def harvest(model: Any, hooks: list[str] | str, n_tokens: int, corpus: Corpus | str | None = None,
            batch_size: int = 16, context_len: int = DEFAULT_CONTEXT_LEN, out_dir: str | Path | None = None,
            seed: int = 0, keep_bos: bool = False, dtype: str = "float32", contexts_per_shard: int | None = None,
            progress: bool = True) -> dict[str, ActivationSource]:
    """Activations of ``model`` at ``hooks`` over ⌈n_tokens / context_len⌉ contexts of ``corpus``.

    batch_size: contexts per forward pass. dtype: storage ('float32', 'bfloat16', 'float16'; reads are
    float32). keep_bos: keep BOS positions as rows (excluded by default: their activations are huge
    outliers). With ``out_dir`` shards go to ``out_dir/<hook>/`` and the sources read them memory-mapped;
    re-running with the same out_dir resumes (or returns at once if complete). Returns {hook: source}.
    """
    hooks, corpus, bos, n_contexts, cps, n_shards, meta = plan_harvest(
        model, hooks, n_tokens, corpus, batch_size, context_len, seed, keep_bos, dtype, contexts_per_shard)
    writers = ({h: ShardWriter(Path(out_dir) / h, {**meta[h], "versions": _versions()}) for h in hooks}
               if out_dir is not None else None)
    start = min(w.done for w in writers.values()) if writers else 0
    if writers and all(w.complete for w in writers.values()):
        start = n_shards
    memory: dict[str, list[dict[str, Tensor]]] = {h: [] for h in hooks}
    bar = tqdm(total=n_contexts * context_len, initial=min(start * cps, n_contexts) * context_len, unit="tok",
               unit_scale=True, desc=f"harvest {len(hooks)} hook{'s' * (len(hooks) > 1)}", disable=not progress)
    stream = itertools.islice(iter_contexts(model.tokenizer, corpus, context_len, seed), start * cps, n_contexts)
    with Capture(model, hooks) as capture:
        for index in range(start, n_shards):
            first = index * cps
            parts = _harvest_shard(capture, stream, first, min(cps, n_contexts - first), batch_size, bos,
                                   keep_bos, STORE_DTYPES[dtype], bar)
            for h in hooks:
                if writers is None:
                    memory[h].append(parts[h])
                elif writers[h].done == index:  # a hook ahead of the others (crash between manifests) keeps its shard
                    writers[h].write(index, first, parts[h])
    bar.close()
    if writers is None:
        return {h: MemorySource(h, meta[h]["d"], context_len, memory[h], meta[h]) for h in hooks}
    for w in writers.values():
        if not w.complete:
            w.finish()
    return {h: ShardSource(Path(out_dir) / h) for h in hooks}


def _harvest_shard(capture: Capture, stream: Iterator[np.ndarray], first: int, n: int, batch_size: int, bos: int,
                   keep_bos: bool, store: torch.dtype, bar: Any) -> dict[str, dict[str, Tensor]]:
    """Contexts ``first … first + n − 1``: forward them in batches; rows of every hook for one shard.
    Batches start at the shard's first context, so a resumed harvest forms the same batches."""
    hooks = capture.hooks
    pieces: dict[str, list[dict[str, Tensor]]] = {h: [] for h in hooks}
    contexts, done = [], 0
    while done < n:
        rows = list(itertools.islice(stream, min(batch_size, n - done)))
        if not rows:
            raise RuntimeError("internal: the context stream ended early")  # iter_contexts repeats the corpus
        tokens = torch.from_numpy(np.stack(rows))
        acts = capture.run(tokens)
        for h in hooks:
            pieces[h].append(_rows(tokens, acts[h].to("cpu", store), first + done, bos, keep_bos))
        contexts.append(tokens)
        done += tokens.shape[0]
        bar.update(tokens.numel())
    ctx = torch.cat(contexts)
    return {h: _merge(pieces[h], ctx) for h in hooks}


def load_activations(folder: str | Path, allow_incomplete: bool = False) -> ShardSource:
    """The activations in ``folder`` (a ``<out_dir>/<hook>/`` folder written by ``harvest``), memory-mapped."""
    folder = Path(folder)
    if folder.is_dir() and not (folder / MANIFEST).exists():
        hooks = sorted(p.name for p in folder.iterdir() if (p / MANIFEST).is_file())
        if hooks:
            raise FileNotFoundError(f"{str(folder)!r} holds activations of several hooks {hooks}: "
                                    f"pass one of them, e.g. {str(folder / hooks[0])!r}")
    if not folder.exists():
        raise FileNotFoundError(f"activation folder {str(folder)!r} does not exist")
    return ShardSource(folder, allow_incomplete=allow_incomplete)
