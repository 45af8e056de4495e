"""`superscope bfs train | eval | probe`: the Coconut graph-reachability models and their BFS probe.

Each command is a config dataclass (options and --help generated from its fields by cli/options.py,
with BFSTrainConfig, GraphConfig and ProbeConfig for the model, graphs and probe) and a function.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from superscope.analyses.bfs.jobs import (
    BFSEvalCommandConfig,
    BFSProbeCommandConfig,
    bfs_eval_command,
    bfs_probe_command,
)
from superscope.analyses.cli.options import add_command, from_args
from superscope.probes.bfs.generator import GraphConfig
from superscope.probes.bfs.probe import ProbeConfig


@dataclass
class BFSTrainCommandConfig:
    """Where a BFS training run writes (the model and graphs: BFSTrainConfig and GraphConfig)."""

    preset: Literal["cpu", "gpu"] = "cpu"
    """cpu: small model and 12-14-node graphs for 2 cores; gpu: 2 layers, 8 heads, d_model 768, 15-20-node graphs on CUDA."""
    out: str | None = None
    """Checkpoint path stem (writes STEM.safetensors and STEM.json)."""
    run: str | None = None
    """Run folder; the checkpoint goes to <run>/bfs/<method>."""
    quiet: bool = False
    """No progress bars."""


def _cmd_train(args: argparse.Namespace) -> None:
    from superscope.analyses.bfs.train import BFSTrainConfig, train_and_save

    c = from_args(BFSTrainCommandConfig, args)
    cfg = from_args(BFSTrainConfig, args, base=BFSTrainConfig.gpu() if c.preset == "gpu" else BFSTrainConfig())
    graph = from_args(GraphConfig, args, base=GraphConfig.gpu() if c.preset == "gpu" else GraphConfig())
    out = Path(c.out) if c.out else (Path(c.run) / "bfs" / cfg.method if c.run else None)
    if out is None:
        raise ValueError("bfs train: give --out PATH_STEM or --run runs/<name> (writes <run>/bfs/<method>)")
    outcome = train_and_save(cfg, graph, out, progress=not c.quiet)
    m = outcome.metrics
    print(f"{cfg.method}: test accuracy {m['test']['accuracy']:.4f} (n={m['test']['n']}), "
          f"train wall {m['train_wall_s']:.0f}s cpu {m['train_cpu_s']:.0f}s -> {out}.safetensors/.json")


def _cmd_eval(args: argparse.Namespace) -> None:
    bfs_eval_command(from_args(BFSEvalCommandConfig, args))


def _cmd_probe(args: argparse.Namespace) -> None:
    bfs_probe_command(from_args(BFSProbeCommandConfig, args), from_args(ProbeConfig, args))


def register(subparsers) -> None:
    """Add `bfs` with sub-commands train / eval / probe to a `superscope` argparse subparsers object."""
    bfs = subparsers.add_parser("bfs", help="Coconut on graph reachability and its BFS-superposition probe")
    sub = bfs.add_subparsers(dest="bfs_command", required=True)

    from superscope.analyses.bfs.train import BFSTrainConfig

    add_command(sub, "train", "train Coconut / CoT / No-CoT (atomic safetensors + JSON checkpoint)", _cmd_train,
                BFSTrainCommandConfig, BFSTrainConfig, GraphConfig)
    add_command(sub, "eval", "accuracy on freshly generated problems", _cmd_eval, BFSEvalCommandConfig)
    add_command(sub, "probe", "⟨thought, node embedding⟩ and edge attention by BFS group", _cmd_probe,
                BFSProbeCommandConfig, ProbeConfig)
