"""Read everything a report or the dashboard shows from one run folder, tolerantly.

``load_run`` never raises for a missing or broken part: each SAE / probe that cannot be read is kept
with an ``error`` string, so a partial run still renders and says what is missing. Only a folder that
is not a run at all (no or corrupt run.json) raises, with a one-line message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from superscope.activations.hooks import hook_layer as _hook_layer
from superscope.analyses.runs.folder import RunFolder
from superscope.saes.atomic_io import read_json, read_jsonl
from superscope.saes.registry import arch_order

PROBES = ("superposition_entropy", "function_tokens", "bfs")




def hook_layer(hook: str) -> int:
    """``activations.hooks.hook_layer`` for hook names read from the run folder, for sorting and labels:
    never raises; a hook after the last block sorts after every block."""
    return _hook_layer(hook, strict=False)


def arch_key(arch: str) -> tuple[int, str]:
    """Sort key: the registry's display order, unregistered names last."""
    order = arch_order()
    return (order.index(arch) if arch in order else len(order), arch)


@dataclass
class SAEEntry:
    """One SAE folder of the run and what could be read from it."""

    hook: str
    arch: str
    folder: Path
    cfg: dict | None = None
    metrics: dict | None = None
    train_log: list[dict] = field(default_factory=list)
    error: str | None = None

    @property
    def eval(self) -> dict:
        return (self.metrics or {}).get("eval") or {}

    @property
    def splice(self) -> dict:
        return (self.metrics or {}).get("splice") or {}


@dataclass
class RunData:
    """The readable content of a run folder."""

    root: Path
    info: dict
    saes: list[SAEEntry]
    probes: dict[str, dict]
    probe_errors: dict[str, str]
    feature_folders: list[tuple[str, str, Path]]

    @property
    def name(self) -> str:
        return str(self.info.get("name") or self.root.name)

    @property
    def hooks(self) -> list[str]:
        return sorted({e.hook for e in self.saes}, key=hook_layer)

    @property
    def main_hook(self) -> str | None:
        hook = self.info.get("main_hook")
        return hook if hook in self.hooks else (self.hooks[-1] if self.hooks else None)

    def at(self, hook: str) -> list[SAEEntry]:
        return sorted((e for e in self.saes if e.hook == hook), key=lambda e: arch_key(e.arch))

    def missing(self) -> list[str]:
        """Human-readable list of what this run lacks or could not read."""
        out = [f"SAE {e.hook}/{e.arch}: {e.error}" for e in self.saes if e.error]
        out += [f"probe {name}: {err}" for name, err in self.probe_errors.items()]
        return out


def _read_sae(hook: str, arch: str, folder: Path) -> SAEEntry:
    entry = SAEEntry(hook, arch, folder)
    try:
        entry.cfg = read_json(folder / "cfg.json", "SAE config")
        if (folder / "metrics.json").exists():
            entry.metrics = read_json(folder / "metrics.json", "SAE metrics")
        else:
            entry.error = "metrics.json missing (not evaluated yet)"
        entry.train_log = read_jsonl(folder / "train_log.jsonl")
    except (OSError, ValueError) as err:
        entry.error = str(err)
    return entry


def load_run(root: str | Path) -> RunData:
    """Read run.json, every SAE's cfg / metrics / training log, the probes and the feature folders."""
    run = RunFolder(Path(root))
    info = run.read()
    saes = [_read_sae(h, a, f) for h, a, f in run.sae_folders()]
    probes, errors = {}, {}
    for name in PROBES:
        path = run.probe(name)
        if not path.exists():
            errors[name] = f"{path.relative_to(run.root)} not written"
            continue
        try:
            data = read_json(path, f"probe result {name}")
            if isinstance(data, dict):
                probes[name] = data
            else:
                errors[name] = f"{path} does not hold a JSON object"
        except (OSError, ValueError) as err:
            errors[name] = str(err)
    feats = sorted(((p.parent.parent.name, p.parent.name, p.parent)
                    for p in (run.root / "features").glob("*/*/index.json")),
                   key=lambda t: (hook_layer(t[0]), arch_key(t[1])))
    return RunData(run.root, info, saes, probes, errors, feats)


def optional(d: dict | None, *keys: str, default: Any = None) -> Any:
    """d[k1][k2]… or ``default`` when any level is missing."""
    for k in keys:
        if not isinstance(d, dict) or k not in d or d[k] is None:
            return default
        d = d[k]
    return d
