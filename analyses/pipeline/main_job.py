"""``superscope run``: the main job as named steps over one run folder (DESIGN.md "Data flow").

harvest → train (middle layer, every architecture) → evaluate (model-free + spliced) →
sweep (one SAE per layer and architecture) → probes → feature data → evals (the evaluation suite's quick
version, analyses/evals/suite.py) → report → precompute (the dashboard's first-load caches,
analyses/pipeline/precompute.py).
Each step records itself in run.json and is skipped when re-run on a finished folder, so an
interrupted job resumes; the trainer resumes inside a step from its checkpoints.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from superscope.analyses.pipeline.config import RunConfig
from superscope.analyses.runs.folder import RunFolder, package_versions
from superscope.saes import SAEConfig, TrainConfig, evaluate, load_sae, train
from superscope.saes.atomic_io import read_json, write_json
from superscope.saes.data import epoch_batches


class Pipeline:
    """The main job over ``RunFolder(cfg.run_dir)``."""

    def __init__(self, cfg: RunConfig, log: Callable[[str], None] = print,
                 train_logger: Callable[[str, dict], Any] | None = None):
        """``train_logger(name, config)``, when given, makes a trainer callback for each SAE trained (e.g.
        ``analyses.runs.wandb_logger.logger_factory``); its ``finish()`` is called after the SAE."""
        self.cfg, self.log, self.train_logger = cfg, log, train_logger
        self.run = RunFolder(Path(cfg.run_dir))
        self._model = None

    # ---- shared ---------------------------------------------------------------------------------
    @property
    def model(self):
        if self._model is None:
            from superscope.activations import load_model
            self._model = load_model(self.cfg.model)
        return self._model

    def start(self) -> None:
        self.run.root.mkdir(parents=True, exist_ok=True)
        if self.run.run_json.exists():
            previous = self.run.read()
            added = added_architectures(previous.get("config") or {}, self.cfg.to_dict())
            if added is None:
                raise ValueError(f"{self.run.root} was made with another configuration; "
                                 "use a new --run-dir, or delete the folder to start over")
            if added:
                self.extend(previous, added)
            return
        self.run.write({"name": self.run.root.name, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                        "config": self.cfg.to_dict(), "model": self.cfg.model or "embedded:SmolLM2-135M-Instruct",
                        "corpus": self.cfg.corpus, "main_hook": self.cfg.main_hook, "hooks": self.cfg.all_hooks,
                        "archs": list(self.cfg.main_table_archs), "seed": self.cfg.seed, "versions": package_versions(),
                        "steps": {}})

    def extend(self, previous: dict, added: list[str]) -> None:
        """A finished run gains middle-layer architectures: record the new config and reopen the steps that
        cover them (``ARCH_STEPS``); their work on the existing SAEs is skipped (``train_one`` keeps finished
        SAEs, ``evaluate_main`` reuses current metrics.json, the suite and precompute skip what they wrote)."""
        data = {k: v for k, v in previous.items() if k != "format"}
        data["config"], data["archs"] = self.cfg.to_dict(), list(self.cfg.main_table_archs)
        for step in ARCH_STEPS:
            if step in data.get("steps", {}):
                data["steps"][step] = {**data["steps"][step], "done": False, "reopened_for": added}
        self.run.write(data)
        self.log(f"[run] adds architectures {added}: {', '.join(ARCH_STEPS)} re-run for them")

    def done(self, step: str) -> bool:
        return bool(self.run.read().get("steps", {}).get(step, {}).get("done"))

    def step(self, name: str, fn: Callable[[], dict | None]) -> None:
        if self.done(name):
            self.log(f"[{name}] already done, skipped")
            return
        self.log(f"[{name}] …")
        t0 = time.perf_counter()
        info = fn() or {}
        self.run.mark_step(name, time.perf_counter() - t0, **info)
        self.log(f"[{name}] done in {time.perf_counter() - t0:.1f} s")

    def sae_config(self, hook: str, arch: str, d_in: int) -> SAEConfig:
        return SAEConfig(architecture=arch, d_in=d_in, d_sae=self.cfg.expansion * d_in, k=self.cfg.k,
                         hook_name=hook, model_name=self.cfg.model or "SmolLM2-135M-Instruct")

    def load_source(self, hook: str, heldout: bool = False):
        from superscope.activations import load_activations
        return load_activations(self.run.heldout(hook) if heldout else self.run.activations(hook))

    # ---- steps ----------------------------------------------------------------------------------
    def harvest(self) -> dict:
        from superscope.activations import harvest
        from superscope.activations.corpus import Corpus
        c = self.cfg
        common = dict(context_len=c.context_len, batch_size=c.harvest_batch_size, seed=c.seed, dtype=c.store_dtype)
        train_src = harvest(self.model, c.all_hooks, c.n_tokens, corpus=Corpus(c.corpus, split="train"),
                            out_dir=self.run.root / "activations", **common)
        held = harvest(self.model, c.all_hooks, c.eval_tokens, corpus=Corpus(c.corpus, split="eval"),
                       out_dir=self.run.root / "heldout", **common)
        return {"train_tokens": train_src[c.main_hook].n_tokens, "heldout_tokens": held[c.main_hook].n_tokens}

    def train_one(self, hook: str, arch: str, total_tokens: int) -> Path:
        folder = self.run.sae(hook, arch)
        if (folder / "train_state.json").exists() and read_json(folder / "train_state.json").get("done"):
            return folder
        source = self.load_source(hook)
        c = self.cfg
        tc = TrainConfig(total_tokens=total_tokens, batch_size=c.batch_size, aux_loss=c.aux_loss, seed=c.seed, lr=c.lr,
                         checkpoint_every_tokens=max(c.batch_size, total_tokens // 4))
        t0 = time.perf_counter()
        logger = None if self.train_logger is None else self.train_logger(
            f"{self.run.root.name}/{hook}/{arch}", {"hook": hook, "architecture": arch, **tc.to_dict()})
        try:
            train(self.sae_config(hook, arch, source.d), epoch_batches(source, c.batch_size, total_tokens, c.seed),
                  tc, out_dir=folder, callbacks=[logger] if logger is not None else ())
        finally:
            if logger is not None and hasattr(logger, "finish"):
                logger.finish()
        write_json(folder / "timing.json", {"train_seconds": time.perf_counter() - t0, "tokens": total_tokens})
        shutil.rmtree(folder / "checkpoints", ignore_errors=True)  # the final weights supersede them
        return folder

    def current_metrics(self, hook: str, arch: str) -> dict | None:
        """metrics.json with splice metrics written after the SAE's weights (an evaluation to reuse), else None."""
        folder = self.run.sae(hook, arch)
        metrics, weights = folder / "metrics.json", folder / "sae.safetensors"
        if not (metrics.exists() and weights.exists()) or metrics.stat().st_mtime < weights.stat().st_mtime:
            return None
        data = read_json(metrics)
        return data if "splice" in data else None

    def evaluate_one(self, hook: str, arch: str, splice: bool) -> dict:
        folder = self.run.sae(hook, arch)
        sae = load_sae(folder)
        held = self.load_source(hook, heldout=True)
        metrics: dict[str, Any] = {"hook": hook, "architecture": arch,
                                   "eval": evaluate(sae, held.batches(self.cfg.batch_size, shuffle=False)).to_dict()}
        if sae.batch_dependent:  # its learned thresholds give a second, per-token inference mode
            sae.cfg.inference_mode = "threshold"
            metrics["eval_threshold_mode"] = evaluate(sae, held.batches(self.cfg.batch_size, shuffle=False)).to_dict()
            sae.cfg.inference_mode = "batch"
        if splice:
            from superscope.saes.model_metrics import splice_metrics
            contexts = held.contexts()[: max(1, self.cfg.splice_tokens // self.cfg.context_len)]
            bos = held.meta.get("bos_token_id")
            result = splice_metrics(self.model, {arch: sae}, hook, contexts.split(8), bos_id=bos)[arch]
            metrics["splice"] = result.to_dict()
        timing = folder / "timing.json"
        if timing.exists():
            metrics["train_seconds"] = read_json(timing)["train_seconds"]
        write_json(folder / "metrics.json", metrics)
        return metrics

    def train_main(self) -> dict:
        for arch in self.cfg.main_table_archs:
            self.train_one(self.cfg.main_hook, arch, self.cfg.train_tokens)
        return {}

    def evaluate_main(self) -> dict:
        hook = self.cfg.main_hook
        table = {arch: self.current_metrics(hook, arch) or self.evaluate_one(hook, arch, splice=True)
                 for arch in self.cfg.main_table_archs}
        self.log(format_table(table))
        return {}

    def sweep(self) -> dict:
        for hook in self.cfg.sweep_hooks:
            for arch in self.cfg.archs:
                self.train_one(hook, arch, self.cfg.sweep_train_tokens)
                self.evaluate_one(hook, arch, splice=False)
        return {}

    def probes(self) -> dict:
        from superscope.analyses.pipeline.probes_step import run_probes
        return run_probes(self.run, self.cfg, self.model)

    def feature_data(self) -> dict:
        from superscope.analyses.features import write_feature_data
        return write_feature_data(self.run, self.model, hooks=[self.cfg.main_hook])

    def evals(self) -> dict:
        """The evaluation suite's quick version on the main hook's SAEs (analyses/evals/suite.py)."""
        from superscope.analyses.evals.suite import SuiteConfig, run_suite
        res = run_suite(self.run.root, SuiteConfig(quick=True, hooks=(self.cfg.main_hook,), model=self.cfg.model),
                        load_model=lambda: self.model, log=self.log)
        return {"written": res.count("written"), "failed": res.count("failed")}

    def report(self) -> dict:
        from superscope.analyses.report import write_report
        return {"report": str(write_report(self.run.root))}

    def precompute(self) -> dict:
        from superscope.analyses.pipeline.precompute import precompute_dashboard
        info = precompute_dashboard(self.run.root)
        info.pop("seconds", None)  # the step's time is recorded by mark_step
        return info

    def run_all(self) -> Path:
        self.start()
        self.step("harvest", self.harvest)
        self.step("train", self.train_main)
        self.step("evaluate", self.evaluate_main)
        if self.cfg.sweep_hooks:
            self.step("sweep", self.sweep)
        self.step("probes", self.probes)
        if self.cfg.feature_data:
            self.step("features", self.feature_data)
        if self.cfg.evals:
            self.step("evals", self.evals)
        if self.cfg.report:
            self.step("report", self.report)
        self.step("precompute", self.precompute)  # no config field: a finished run folder stays resumable
        return self.run.root


def same_config(previous: dict, current: dict) -> bool:
    """Whether a run folder's recorded config is ``current``; a field added to RunConfig since the folder was
    made counts as recorded at its default (so an older run folder stays resumable)."""
    defaults = RunConfig().to_dict()
    return all(previous.get(k, defaults.get(k)) == current.get(k) for k in set(previous) | set(current))


ARCH_STEPS = ("train", "evaluate", "evals", "report", "precompute")
"""Steps over every middle-layer architecture: reopened when a finished run gains architectures."""


def added_architectures(old: dict, new: dict) -> list[str] | None:
    """The middle-layer architectures ``new`` adds to ``old`` ([] for the same config); None when they differ
    otherwise (another field, or ``archs`` changed: the sweep trains those). A config recorded before
    ``main_archs`` existed had none (its run trained ``archs`` only)."""
    keys = ("archs", "main_archs")
    if not same_config({k: v for k, v in old.items() if k not in keys}, {k: v for k, v in new.items() if k not in keys}):
        return None
    if list(old.get("archs", RunConfig().archs)) != list(new.get("archs", [])):
        return None
    before = {*old.get("archs", RunConfig().archs), *old.get("main_archs", [])}
    after = [*new.get("archs", []), *new.get("main_archs", [])]
    if not before <= set(after):
        return None  # an architecture removed
    return [a for a in dict.fromkeys(after) if a not in before]


def format_table(table: dict[str, dict]) -> str:
    """The headline table: architecture × FVU, L0 mean ± std, dead in training %, silent on held-out %,
    CE-loss recovered, KL."""
    lines = [f"{'arch':<16}{'FVU':>8}{'L0 mean':>9}{'L0 std':>8}{'dead %':>8}{'silent %':>9}{'CE rec':>8}{'KL':>8}"]
    for arch, m in table.items():
        e, s = m["eval"], m.get("splice") or {}
        dead = e.get("dead_train_frac")
        lines.append(f"{arch:<16}{e['fvu']:>8.3f}{e['l0_mean']:>9.1f}{e['l0_std']:>8.1f}"
                     f"{100 * (float('nan') if dead is None else dead):>8.2f}{100 * e['dead_frac']:>9.1f}"
                     f"{s.get('ce_loss_recovered', float('nan')):>8.3f}{s.get('kl_div', float('nan')):>8.3f}")
    lines.append("dead %: no fire in the last dead_tokens training tokens; silent %: no fire on the held-out tokens")
    return "\n".join(lines)
