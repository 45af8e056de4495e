"""The data-parallel SAE training program; run it under torchrun (docs/distributed.md).

    torchrun --nproc_per_node=2 -m superscope.analyses.cli.torchrun_train --arch topk mutual_choice \\
        --activations runs/r/activations/blocks.6.hook_resid_post --out runs/r/saes/blocks.6.hook_resid_post \\
        --d-sae 4608 --k 32 --batch-size 4096 --total-tokens 2000000 --checkpoint-every-tokens 200000

Options are generated from LaunchConfig, SAEConfig and TrainConfig (``--help``). ``--batch-size`` is the
GLOBAL batch. Without torchrun (or with one process) it trains in this process with the plain Trainer.
A program, so it lives with the command line and may import every layer; the library part
(``DistributedTrainer``, ``train_distributed``) is ``superscope.saes.distributed``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

import torch
import torch.distributed as dist
from torch import Tensor

from superscope.activations.harvesting import load_activations
from superscope.activations.toy import ToyConfig, ToySource
from superscope.analyses.cli.options import add_dataclass_args, from_args
from superscope.saes.config import SAEConfig, TrainConfig
from superscope.saes.data import epoch_batches
from superscope.saes.distributed import train_distributed


@dataclass
class LaunchConfig:
    """What the distributed entry point trains on, and where it writes."""

    arch: tuple[str, ...] = ("topk",)
    """Architectures to train, one after the other, on the same activation stream (each into out/<arch>/)."""
    activations: str = ""
    """A shard folder written by harvest (…/<hook>/); every rank reads the same shuffled global batches."""
    toy_d: int = 0
    """Without --activations: synthetic activations (activations.toy) of this width, for smoke tests."""
    toy_features: int = 256
    """Synthetic data: number of true features."""
    toy_active: float = 4.0
    """Synthetic data: mean number of active true features per row."""
    out: str = "runs/sae"
    """Output folder: out/<arch>/ gets cfg.json, sae.safetensors, train_log.jsonl, checkpoints/ (resumes)."""
    backend: Literal["auto", "gloo", "nccl"] = "auto"
    """torch.distributed backend: auto = NCCL when CUDA is available, else gloo."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="torchrun --nproc_per_node=N -m superscope.analyses.cli.torchrun_train",
                                     description="Data-parallel SAE training (see docs/distributed.md).")
    add_dataclass_args(parser, LaunchConfig)
    add_dataclass_args(parser, SAEConfig, skip=("architecture", "d_in", "input_scale", "hook_name", "model_name", "training"))
    add_dataclass_args(parser, TrainConfig)
    return parser


def global_batches(launch: LaunchConfig, tc: TrainConfig) -> tuple[Iterator[Tensor], dict[str, Any]]:
    """The stream of global batches and the SAEConfig fields it implies (d_in, hook_name, model_name)."""
    if launch.activations:
        source = load_activations(launch.activations)
        info = {"d_in": source.d, "hook_name": source.hook, "model_name": str(source.meta.get("model", ""))}
        return epoch_batches(source, tc.batch_size, tc.total_tokens, tc.seed), info
    if launch.toy_d > 0:
        toy = ToySource(ToyConfig(d=launch.toy_d, n_features=launch.toy_features, mean_active=launch.toy_active,
                                  seed=tc.seed))
        return toy.batches(tc.batch_size, n_batches=tc.total_steps, seed=tc.seed + 1), {"d_in": launch.toy_d}
    raise ValueError("no data: give --activations (a shard folder from harvest) or --toy-d (synthetic data)")


def init_from_env(backend: str) -> bool:
    """Join the process group torchrun describes (WORLD_SIZE > 1); False when there is none to join."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)
    return True


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    joined = False
    try:
        launch, tc = from_args(LaunchConfig, args), from_args(TrainConfig, args)
        joined = init_from_env(launch.backend)
        for arch in launch.arch:
            batches, info = global_batches(launch, tc)
            cfg = from_args(SAEConfig, args, architecture=arch, **info)
            out = Path(launch.out) / arch
            sae = train_distributed(cfg, batches, tc, out_dir=out)
            if not dist.is_initialized() or dist.get_rank() == 0:
                world = dist.get_world_size() if dist.is_initialized() else 1
                print(f"trained {arch} (F={sae.cfg.d_sae}, k={sae.cfg.k}) on {world} process(es) → {out}")
        if joined:
            dist.barrier()  # no rank tears down while another still writes or communicates
    except (ValueError, FileNotFoundError, TypeError) as err:
        print(f"superscope.analyses.cli.torchrun_train: error: {err}", file=sys.stderr)
        return 1
    finally:
        if joined:
            dist.destroy_process_group()
    return 0


def run_and_exit(argv: list[str] | None = None) -> NoReturn:
    """``main``, then leave without interpreter finalisation: the process-group entry point torchrun runs.

    DDP's reducer keeps the gloo process group alive after ``destroy_process_group`` (its hooks sit on
    the parameters' gradient accumulators), so gloo's worker threads outlive ``main``. A worker that
    frees a finished collective's tensors after finalisation began must take the GIL, cannot, and
    aborts the process ("terminate called without an active exception", SIGABRT; seen on a loaded
    2-core machine in about 1 run in 10; pytorch/pytorch PR 179291 describes the same race). Every
    file is complete by now (atomic writes, then a barrier), so nothing is lost by skipping it."""
    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":  # torchrun ... -m superscope.analyses.cli.torchrun_train ...
    run_and_exit()
