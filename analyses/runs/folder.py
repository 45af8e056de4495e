"""The run folder contract (DESIGN.md "The run folder is the contract"): paths, and run.json.

    runs/<run>/run.json                       what ran (config, model, corpus, hooks, versions, steps)
    runs/<run>/activations/<hook>/            training activations (shards + manifest.json)
    runs/<run>/heldout/<hook>/                held-out activations for evaluation and feature data
    runs/<run>/saes/<hook>/<arch>/            cfg.json, sae.safetensors, metrics.json, train_log.jsonl
    runs/<run>/features/<hook>/<arch>/        per-feature data for the dashboard
    runs/<run>/probes/<probe>.json            probe results
    runs/<run>/report.html
    runs/<run>/cache/                         what the dashboard would compute on a first load, precomputed
                                              (each file carries its inputs' signature; stale ones are ignored)
"""

from __future__ import annotations

import importlib.metadata as md
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from superscope.saes.atomic_io import read_json, write_json

RUN_FILE = "run.json"
CACHE_DIR = "cache"


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("superscope", "torch", "transformers", "transformer-lens", "sae-lens", "safetensors", "plotly"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


@dataclass(frozen=True)
class RunFolder:
    """Paths inside one run folder."""

    root: Path

    @property
    def run_json(self) -> Path:
        return self.root / RUN_FILE

    def activations(self, hook: str) -> Path:
        return self.root / "activations" / hook

    def heldout(self, hook: str) -> Path:
        return self.root / "heldout" / hook

    def sae(self, hook: str, arch: str) -> Path:
        return self.root / "saes" / hook / arch

    def features(self, hook: str, arch: str) -> Path:
        return self.root / "features" / hook / arch

    def probe(self, name: str) -> Path:
        return self.root / "probes" / f"{name}.json"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    def files_signature(self, files) -> dict[str, int]:
        """{path in the run: size + modification time (ns)} of those ``files`` that exist: what a precomputed
        result (``<run>/cache/``) depends on; another signature means it is stale."""
        out = {}
        for f in files:
            try:
                st = Path(f).stat()
            except OSError:
                continue
            out[str(Path(f).relative_to(self.root))] = st.st_size + st.st_mtime_ns
        return out

    def sae_folders(self) -> list[tuple[str, str, Path]]:
        """(hook, arch, folder) of every SAE with weights in this run."""
        found = []
        for cfg in sorted((self.root / "saes").glob("*/*/sae.safetensors")):
            found.append((cfg.parent.parent.name, cfg.parent.name, cfg.parent))
        return found

    # ---- run.json -----------------------------------------------------------------------------
    def read(self) -> dict[str, Any]:
        if not self.run_json.is_file():
            raise FileNotFoundError(f"{self.root} is not a superscope run folder (no {RUN_FILE}); "
                                    "create one with `superscope run`")
        data = read_json(self.run_json, "run description")
        if not isinstance(data, dict) or data.get("format") != "superscope.run":
            raise ValueError(f"{self.run_json} is not a superscope run description")
        return data

    def write(self, data: dict[str, Any]) -> None:
        write_json(self.run_json, {"format": "superscope.run", **data})

    def mark_step(self, step: str, seconds: float, **info: Any) -> None:
        data = self.read()
        data.setdefault("steps", {})[step] = {"done": True, "seconds": round(seconds, 2),
                                              "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **info}
        self.write({k: v for k, v in data.items() if k != "format"})
