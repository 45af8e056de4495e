"""`superscope bfs train | eval | probe`: the Coconut graph-reachability models and their BFS probe.

Each command is a config dataclass (options and --help generated from its fields by dataclass_cli,
with BFSTrainConfig, GraphConfig and ProbeConfig for the model, graphs and probe) and a function.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from superscope.probes.bfs.checkpoint import load_bfs_checkpoint
from superscope.probes.bfs.generator import GraphConfig, generate_problems
from superscope.probes.bfs.probe import ProbeConfig, bfs_probe
from superscope.saes.atomic_io import write_json

from .dataclass_cli import add_dataclass_args, from_args


@dataclass
class BFSCheckpointConfig:
    """Which BFS checkpoint to load, where, and which run folder gets the result."""

    checkpoint: str = "coconut"
    """Shipped name (coconut, cot, nocot) or a path stem of a checkpoint."""
    run: str | None = None
    """Run folder; results go to <run>/probes/."""
    device: Literal["cpu", "cuda"] = "cpu"
    """Where to run the model."""


@dataclass
class BFSEvalCommandConfig(BFSCheckpointConfig):
    """Accuracy of a checkpoint on freshly generated problems."""

    n: int = 1000
    """Problems to generate."""
    seed: int = 777
    """Seed of the generated problems."""


@dataclass
class BFSProbeCommandConfig(BFSCheckpointConfig):
    """The BFS-superposition probe of a Coconut checkpoint (the probe's own settings: ProbeConfig)."""


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


def bfs_eval_command(c: BFSEvalCommandConfig) -> dict:
    """Accuracy of ``c.checkpoint`` on ``c.n`` fresh problems; written to <run>/probes/ with ``c.run``."""
    from superscope.probes.bfs.evaluate import accuracy

    ck = load_bfs_checkpoint(c.checkpoint, device=c.device)
    res = accuracy(ck.model, generate_problems(ck.graph, c.n, c.seed), ck.vocab, ck.method)
    print(f"{c.checkpoint} ({ck.method}): accuracy {res.accuracy:.4f} on {res.n} fresh problems "
          f"(seed {c.seed}); by hops {res.accuracy_by_hops}")
    out = {"checkpoint": str(c.checkpoint), "seed": c.seed, **res.to_dict()}
    if c.run:
        write_json(Path(c.run) / "probes" / f"bfs_eval_{ck.method}.json", out)
    return out


def bfs_probe_command(c: BFSProbeCommandConfig, probe: ProbeConfig | None = None):
    """The BFS probe of the Coconut checkpoint ``c.checkpoint``; <run>/probes/bfs.json with ``c.run``."""
    pcfg = probe or ProbeConfig()
    ck = load_bfs_checkpoint(c.checkpoint, device=c.device)
    if ck.method != "coconut":
        raise ValueError(f"bfs probe needs a Coconut checkpoint; {c.checkpoint} is {ck.method}")
    problems = generate_problems(ck.graph, pcfg.n_problems, pcfg.seed)
    res = bfs_probe(ck.model, ck.vocab, problems, pcfg, meta={"checkpoint": str(c.checkpoint),
                                                              "model": ck.model.cfg.to_dict()})
    print(res.table())
    if c.run:
        out = Path(c.run) / "probes" / "bfs.json"
        write_json(out, res.to_dict())
        print(f"wrote {out}")
    return res


def _cmd_train(args: argparse.Namespace) -> None:
    from superscope.analyses.bfs_train import BFSTrainConfig, train_and_save

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

    from superscope.analyses.bfs_train import BFSTrainConfig

    tr = sub.add_parser("train", help="train Coconut / CoT / No-CoT (atomic safetensors + JSON checkpoint)")
    add_dataclass_args(tr, BFSTrainCommandConfig)
    add_dataclass_args(tr, BFSTrainConfig)
    add_dataclass_args(tr, GraphConfig)
    tr.set_defaults(func=_cmd_train)

    ev = sub.add_parser("eval", help="accuracy on freshly generated problems")
    add_dataclass_args(ev, BFSEvalCommandConfig)
    ev.set_defaults(func=_cmd_eval)

    pr = sub.add_parser("probe", help="⟨thought, node embedding⟩ and edge attention by BFS group")
    add_dataclass_args(pr, BFSProbeCommandConfig)
    add_dataclass_args(pr, ProbeConfig)
    pr.set_defaults(func=_cmd_probe)
