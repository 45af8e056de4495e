"""Sharded harvesting: W ranks (torchrun, or separate jobs) each harvest a disjoint slice of the corpus.

    torchrun --nproc_per_node=4 -m superscope.analyses.cli.torchrun_harvest \\
        --hooks blocks.6.hook_resid_post --n-tokens 10000000 --out runs/r/activations

The shard layout is ``harvest``'s (``plan_harvest``): shard i holds contexts [i·C, (i+1)·C) of the
corpus stream, fixed by (corpus, seed, context_len, C). Rank r harvests the shards i ≡ r (mod W) that
are not done yet, skipping the other ranks' contexts in the stream, and writes them with an ordinary
``ShardWriter`` into ``out/<hook>/ranks/w<W>-r<r>/`` (its own manifest: atomic writes, resume after a
crash). When every shard exists, the shards are merged by manifest: ``out/<hook>/manifest.json`` lists
all of them in corpus order (files referenced inside ``ranks/``), so ``load_activations(out/<hook>)``,
``ShardSource`` and a later ``harvest(..., out_dir=out)`` with the same settings see one complete harvest
(the same rows as a single-process harvest).

Resume on any world size: the shards already done are read from every ``ranks/*`` manifest, and only
the rest is split among the new ranks. With a process group, rank 0 merges after a barrier; without
one (e.g. an array of jobs given --rank/--world-size), whichever rank finishes last merges.
"""

from __future__ import annotations

import collections
import itertools
import os
from pathlib import Path
from typing import Any

import torch.distributed as dist
from tqdm.auto import tqdm

from .capture import Capture
from .corpus import DEFAULT_CONTEXT_LEN, Corpus, iter_contexts
from .harvesting import _harvest_shard, _versions, plan_harvest
from .shards import FORMAT, MANIFEST, STORE_DTYPES, VERSION, ShardSource, ShardWriter, read_manifest, write_manifest

__all__ = ["harvest_sharded", "merge_rank_shards", "rank_and_world"]

RANKS_DIR = "ranks"


def rank_and_world(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """Explicit values, else the torch.distributed group, else $RANK / $WORLD_SIZE, else (0, 1)."""
    if rank is None and world_size is None and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    rank = int(os.environ.get("RANK", 0)) if rank is None else rank
    world_size = int(os.environ.get("WORLD_SIZE", 1)) if world_size is None else world_size
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    return rank, world_size


def _done_entries(hook_dir: Path) -> dict[int, dict[str, Any]]:
    """Intact shards of all rank folders of one hook: global shard index → manifest entry (file relative
    to ``hook_dir``). A rank folder counts its shards in order up to the first missing or cut file."""
    done: dict[int, dict[str, Any]] = {}
    ranks = hook_dir / RANKS_DIR
    folders = sorted(p for p in ranks.iterdir() if (p / MANIFEST).is_file()) if ranks.is_dir() else []
    for folder in [hook_dir, *folders]:  # hook_dir: shards of a plain harvest() that did not finish
        if not (folder / MANIFEST).is_file():
            continue
        manifest = read_manifest(folder)
        for entry in manifest["shards"]:
            path = folder / entry["file"]
            if not path.is_file() or path.stat().st_size != entry["bytes"]:
                break
            index = entry["context_start"] // manifest["contexts_per_shard"]
            done.setdefault(index, {**entry, "index": index, "file": str(path.relative_to(hook_dir))})
    return done


def _check_settings(hook_dir: Path, settings: dict[str, Any]) -> bool:
    """Whether ``hook_dir`` already holds the complete harvest; an error if it holds another one."""
    if not (hook_dir / MANIFEST).is_file():
        return False
    old = read_manifest(hook_dir)
    diff = sorted(k for k, v in settings.items() if k != "versions" and old.get(k) != v)
    if diff:
        raise ValueError(f"{hook_dir} holds a harvest with other settings ({', '.join(diff)}); "
                         "use a new out_dir or delete this one")
    return bool(old["complete"])


def _remove_debris(hook_dir: Path, own: Path, world: int) -> None:
    """Delete temp files (atomic writes: ``.<name>.<random>.tmp``) that killed runs left in this rank's
    folder and in folders of other world sizes (those runs are over; same-size peers may be writing)."""
    folders = [p for p in (hook_dir / RANKS_DIR).glob("w*-r*") if p == own or not p.name.startswith(f"w{world}-")]
    for folder in folders:
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)


def merge_rank_shards(hook_dir: str | Path, settings: dict[str, Any], n_shards: int) -> bool:
    """Write ``hook_dir/manifest.json`` listing every shard in corpus order, once all ``n_shards`` exist.
    Returns whether the harvest is complete (False: shards still missing, nothing written)."""
    hook_dir = Path(hook_dir)
    done = _done_entries(hook_dir)
    if any(i not in done for i in range(n_shards)):
        return False
    shards = [done[i] for i in range(n_shards)]
    write_manifest(hook_dir, {"format": FORMAT, "version": VERSION, **settings, "shards": shards,
                              "n_tokens": sum(s["n_tokens"] for s in shards), "complete": True})
    return True


def harvest_sharded(model: Any, hooks: list[str] | str, n_tokens: int, out_dir: str | Path,
                    corpus: Corpus | str | None = None, rank: int | None = None, world_size: int | None = None,
                    batch_size: int = 16, context_len: int = DEFAULT_CONTEXT_LEN, seed: int = 0,
                    keep_bos: bool = False, dtype: str = "float32", contexts_per_shard: int | None = None,
                    progress: bool = True) -> dict[str, ShardSource] | None:
    """``harvest(..., out_dir=out_dir)`` split over ranks (arguments as there). Returns {hook: source}
    once the merged harvest is complete, None on a rank that finished while others still run (no
    process group: the last rank to finish merges)."""
    grouped = rank is None and world_size is None and dist.is_initialized()
    rank, world = rank_and_world(rank, world_size)
    hooks, corpus, bos, n_contexts, cps, n_shards, meta = plan_harvest(
        model, hooks, n_tokens, corpus, batch_size, context_len, seed, keep_bos, dtype, contexts_per_shard)
    out = Path(out_dir)
    settings = {h: {**meta[h], "versions": _versions()} for h in hooks}
    if all([_check_settings(out / h, settings[h]) for h in hooks]):
        return {h: ShardSource(out / h) for h in hooks}
    done = {h: set(_done_entries(out / h)) for h in hooks}
    todo = [i for i in range(rank, n_shards, world) if any(i not in done[h] for h in hooks)]
    own = {h: out / h / RANKS_DIR / f"w{world}-r{rank}" for h in hooks}
    for h in hooks:
        _remove_debris(out / h, own[h], world)
    writers = {h: ShardWriter(own[h], {**settings[h], "rank": rank, "world_size": world}) for h in hooks}
    bar = tqdm(total=sum(min(cps, n_contexts - i * cps) for i in todo) * context_len, unit="tok", unit_scale=True,
               desc=f"harvest rank {rank}/{world}", disable=not progress or rank != 0)
    stream, position = iter_contexts(model.tokenizer, corpus, context_len, seed), 0
    with Capture(model, hooks) as capture:
        for index in todo:
            first = index * cps
            collections.deque(itertools.islice(stream, first - position), maxlen=0)  # other ranks' contexts
            n = min(cps, n_contexts - first)
            parts = _harvest_shard(capture, stream, first, n, batch_size, bos, keep_bos, STORE_DTYPES[dtype], bar)
            position = first + n
            for h in hooks:
                if index not in done[h]:  # a hook ahead of the others (crash between writes) keeps its shard
                    writers[h].write(writers[h].done, first, parts[h])
    bar.close()
    for w in writers.values():
        w.finish()
    if grouped:  # every rank is done after the barrier: rank 0 merges
        dist.barrier()
        if rank == 0:
            for h in hooks:
                merge_rank_shards(out / h, settings[h], n_shards)
        dist.barrier()
        complete = True
    else:  # separate jobs: whoever finds every shard done merges
        complete = all([merge_rank_shards(out / h, settings[h], n_shards) for h in hooks])
    return {h: ShardSource(out / h) for h in hooks} if complete else None
