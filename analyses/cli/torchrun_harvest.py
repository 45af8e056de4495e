"""The harvesting program: ``superscope cache`` in one process, or split over ranks under torchrun
(or an array of jobs given --rank/--world-size); docs/distributed.md.

    torchrun --nproc_per_node=4 -m superscope.analyses.cli.torchrun_harvest \\
        --hooks blocks.6.hook_resid_post --n-tokens 10000000 --out runs/r/activations

One config (``HarvestConfig``) and one function (``run_harvest``) serve ``superscope cache`` and this
program. A program, so it lives with the command line; the library part is
``superscope.activations.harvesting`` / ``superscope.activations.distributed_harvest``.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist

from superscope.activations.corpus import DEFAULT_CONTEXT_LEN, Corpus
from superscope.activations.distributed_harvest import harvest_sharded
from superscope.activations.harvesting import harvest
from superscope.activations.models import load_model
from superscope.analyses.cli.options import add_dataclass_args, from_args


@dataclass
class HarvestConfig:
    """Harvest activations at one or more hooks to a shard folder (in one process or split over ranks)."""

    out: str = "runs/cache"
    """Output folder; shards go to <out>/<hook>/ (re-running resumes, on any number of ranks)."""
    hooks: tuple[str, ...] = ("blocks.15.hook_resid_post",)
    """TransformerLens hook names."""
    n_tokens: int = 100_000
    """Tokens to harvest (all ranks together)."""
    model: str | None = None
    """Model name, folder or .gguf; None = the embedded SmolLM2-135M-Instruct."""
    corpus: str = "default"
    """'default', a local text/jsonl path, or a Hugging Face dataset name."""
    split: Literal["train", "eval"] = "train"
    """Corpus split (held-out by document hash)."""
    context_len: int = DEFAULT_CONTEXT_LEN
    """Tokens per context."""
    batch_size: int = 16
    """Contexts per forward pass."""
    contexts_per_shard: int | None = None
    """Contexts per shard; None = about 64 MiB per shard."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Storage dtype."""
    seed: int = 0
    """Corpus order seed."""
    rank: int | None = None
    """This job's rank when not launched by torchrun (e.g. an array of jobs); None = from torchrun, or one process."""
    world_size: int | None = None
    """Number of jobs when not launched by torchrun; None = from torchrun, or one process."""

    def __post_init__(self) -> None:
        if (self.rank is None) != (self.world_size is None):
            raise ValueError("give --rank and --world-size together (or neither: torchrun or one process)")
        if self.rank is not None and not 0 <= self.rank < self.world_size:
            raise ValueError(f"--rank must be in [0, world size {self.world_size}), got {self.rank}")
        if self.n_tokens <= 0:
            raise ValueError(f"--n-tokens must be positive, got {self.n_tokens}")


def run_harvest(c: HarvestConfig, model: Any = None, progress: bool = True) -> dict | None:
    """Harvest as ``c`` says: split over ranks when a rank is given or a process group exists, else in
    this process. Returns {hook: source} once the harvest is complete (None on a rank that finished
    while others still run)."""
    if model is None:
        device = f"cuda:{os.environ.get('LOCAL_RANK', 0)}" if torch.cuda.is_available() else "cpu"
        model = load_model(c.model, device=device)
    corpus = Corpus(c.corpus, split=c.split)
    options = {"batch_size": c.batch_size, "context_len": c.context_len, "seed": c.seed, "dtype": c.dtype,
               "contexts_per_shard": c.contexts_per_shard, "progress": progress}
    if c.rank is None and not dist.is_initialized():
        return harvest(model, list(c.hooks), c.n_tokens, corpus=corpus, out_dir=c.out, **options)
    return harvest_sharded(model, list(c.hooks), c.n_tokens, c.out, corpus=corpus, rank=c.rank,
                           world_size=c.world_size, **options)


def report(c: HarvestConfig, sources: dict | None, rank: int = 0) -> None:
    """What was harvested (rank 0, or every job of an array)."""
    for hook, src in (sources or {}).items():
        print(f"{hook}: {src.n_tokens} tokens, d={src.d} → {Path(c.out) / hook}")
    if sources is None:
        print(f"rank {rank} done; the harvest is merged when the last rank finishes")


def main(argv: list[str] | None = None) -> int:
    """Entry point; under torchrun each rank joins the process group (gloo: only barriers are needed)."""
    parser = argparse.ArgumentParser(prog="torchrun --nproc_per_node=N -m superscope.analyses.cli.torchrun_harvest",
                                     description="Harvest activations split over ranks (docs/distributed.md).")
    add_dataclass_args(parser, HarvestConfig)
    joined = False
    try:
        c = from_args(HarvestConfig, parser.parse_args(argv))
        joined = c.rank is None and int(os.environ.get("WORLD_SIZE", 1)) > 1 and not dist.is_initialized()
        if joined:
            dist.init_process_group("gloo")
        rank = dist.get_rank() if dist.is_initialized() else (c.rank or 0)
        sources = run_harvest(c)
        if rank == 0 or c.rank is not None:
            report(c, sources, rank)
    except (ValueError, FileNotFoundError, OSError) as err:
        print(f"superscope.analyses.cli.torchrun_harvest: error: {err}", file=sys.stderr)
        return 1
    finally:
        if joined:
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
