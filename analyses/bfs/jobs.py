"""The BFS commands' work: a checkpoint's accuracy on fresh problems and its BFS-superposition probe
(``superscope bfs eval | probe`` and the main job's probe step; one config dataclass and one function each)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from superscope.probes.bfs.checkpoint import load_bfs_checkpoint
from superscope.probes.bfs.generator import generate_problems
from superscope.probes.bfs.probe import ProbeConfig, bfs_probe
from superscope.saes.atomic_io import write_json


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
