"""The evaluation suite runner (specs/evals.md): every registered metric on every SAE (hook, arch) of a
run folder, or on SAE folders outside a run (superscope's or SAELens'), one JSON file each:

    runs/<run>/evals/<hook>/<arch>/<metric>.json
    {<the metric's result.to_dict(): SAEBench's fields (eval_type_id, eval_config, eval_result_metrics,
      eval_result_details, ...) at the top level, as SAEBench writes them>,
     "suite": {"metric", "hook", "architecture", "sae", "quick", "config", "elapsed_s", "finished",
               "summary": {the scalars of the table and the Pareto plots}}}
    a failed metric: {"suite": {..., "error": "<one line>"}}

Writes are atomic; a written result is skipped on the next call (resume) unless ``force``, except that a
quick result does not stand in for a full one (and a failure is retried); a failed metric records its
error line and the others go on. Metrics are registered by name in ``METRICS`` (module, config class,
evaluate function): adding one is one line. A metric module is imported only when the metric runs, so a
missing or broken module is that metric's error, not the suite's.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from superscope.analyses.evals.context import EvalContext
from superscope.analyses.runs.evals import details_path
from superscope.saes.atomic_io import read_json, write_json


@dataclass(frozen=True)
class MetricEntry:
    """Where a metric lives: ``module`` defines the config class (with ``quick()``) and
    ``evaluate(sae, context, config) -> result`` (result.to_dict(), optional result.headline())."""

    module: str
    config: str
    evaluate: str
    summary: str | None = None
    """Function of the module mapping result.to_dict() to the scalars of the table (None: the result's headline)."""
    needs_model: bool = True
    """Whether the metric runs the model (the suite then checks the SAE's width against it)."""


METRICS: dict[str, MetricEntry] = {
    "core": MetricEntry("superscope.analyses.evals.core", "CoreConfig", "evaluate_core", "summary", needs_model=False),
    "sparse_probing": MetricEntry("superscope.analyses.evals.sparse_probing", "SparseProbingConfig",
                                  "evaluate_sparse_probing", "summary"),
    "absorption": MetricEntry("superscope.analyses.evals.absorption", "AbsorptionConfig", "evaluate_absorption",
                              "summary"),
    "autointerp": MetricEntry("superscope.analyses.evals.autointerp", "AutointerpConfig", "evaluate_autointerp"),
}
"""name → where its config and evaluate function live (imported when the metric runs)."""

MODEL_WIDTH_HOOKS = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_mlp_out", "hook_attn_out")
"""Hooks whose activations are d_model wide (the SAE's d_in must equal the model's d_model there)."""


@dataclass
class SuiteConfig:
    """Which SAEs and metrics the evaluation suite runs, and how thoroughly."""

    metrics: tuple[str, ...] = ()
    """Metrics to run (empty: all): core, sparse_probing, absorption, autointerp."""
    quick: bool = False
    """Each metric's quick() configuration (what `superscope run` runs) instead of the full one."""
    hooks: tuple[str, ...] = ()
    """Hooks of the run whose SAEs are evaluated (empty: the run's main hook)."""
    archs: tuple[str, ...] = ()
    """Architectures evaluated (empty: every SAE at those hooks)."""
    force: bool = False
    """Recompute results already written (default: skip them, so an interrupted suite resumes)."""
    model: str | None = None
    """Model the metrics run (None: the run's model; outside a run the embedded SmolLM2-135M-Instruct)."""
    device: str = "cpu"
    """Device for the SAEs and the model."""

    def __post_init__(self) -> None:
        self.metrics, self.hooks, self.archs = tuple(self.metrics), tuple(self.hooks), tuple(self.archs)
        unknown = sorted(set(self.metrics) - set(METRICS))
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; choose from {sorted(METRICS)}")

    @property
    def selected(self) -> list[str]:
        return list(self.metrics) or list(METRICS)


@dataclass(frozen=True)
class SAETarget:
    """One SAE to evaluate and where its results go."""

    hook: str
    name: str
    """The architecture in a run; the folder's name for an SAE outside one."""
    folder: Path
    out_dir: Path
    heldout_dir: Path | None = None
    features_root: Path | None = None
    cache_dir: Path | None = None


@dataclass
class SuiteRecord:
    """What happened to one (SAE, metric)."""

    hook: str
    name: str
    metric: str
    status: str
    """'written', 'skipped' (already written) or 'failed'."""
    path: Path
    seconds: float = 0.0
    error: str | None = None


@dataclass
class SuiteReport:
    records: list[SuiteRecord] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.records)

    def table(self) -> str:
        lines = [f"{'hook':<28}{'SAE':<18}{'metric':<16}{'status':<9}{'s':>7}  error"]
        for r in self.records:
            lines.append(f"{r.hook:<28}{r.name:<18}{r.metric:<16}{r.status:<9}{r.seconds:>7.1f}  {r.error or ''}")
        lines.append(f"{self.count('written')} written, {self.count('skipped')} skipped, {self.count('failed')} failed "
                     f"in {self.seconds:.1f} s")
        return "\n".join(lines)


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return f"{type(err).__name__}: {text}"


def metric_parts(name: str) -> tuple[type, Callable, Callable[[Any], dict] | None]:
    """(config class, evaluate function, summary function or None) of a registered metric."""
    entry = METRICS[name]
    module = importlib.import_module(entry.module)
    summary = getattr(module, entry.summary) if entry.summary else None
    return getattr(module, entry.config), getattr(module, entry.evaluate), summary


TOP_LEVEL_SUMMARY = ("autointerp_score", "mean_balanced_accuracy", "median_balanced_accuracy", "mean_f1", "median_f1")
"""Scalars a metric's to_dict() may hold at its top level (autointerp's), taken into the summary as they are."""


def headline_summary(result: Any) -> dict[str, float]:
    """The numeric headline values of a result (saes.result_repr.ResultRepr), by label."""
    out = {}
    for label, value, _fmt in getattr(result, "headline", lambda: [])():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[label] = float(value)
    return out


def is_done(path: Path, quick: bool) -> bool:
    """A result (not an error) is written at ``path``, and is at least as thorough as asked."""
    if not path.is_file():
        return False
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return False
    suite = data.get("suite") if isinstance(data, dict) else None
    return isinstance(suite, dict) and "error" not in suite and (quick or not suite.get("quick", False))


# ---- finding the SAEs --------------------------------------------------------------------------------
def run_targets(run_root: Path, config: SuiteConfig) -> tuple[list[SAETarget], str | None]:
    """The run's SAEs at the chosen hooks/archs, and the run's model name (None: the embedded model)."""
    from superscope.analyses.runs.folder import RunFolder

    run = RunFolder(Path(run_root))
    info = run.read()
    found = run.sae_folders()
    if not found:
        raise FileNotFoundError(f"{run.root} has no SAEs (saes/<hook>/<arch>/sae.safetensors); train them first")
    hooks = config.hooks or ((info.get("main_hook"),) if info.get("main_hook") in {h for h, _, _ in found}
                             else (found[-1][0],))
    have_hooks = sorted({h for h, _, _ in found})
    missing = sorted(set(hooks) - set(have_hooks))
    if missing:
        raise ValueError(f"no SAEs at hooks {missing} in {run.root}; this run has SAEs at {have_hooks}")
    targets = []
    for hook, arch, folder in found:
        if hook not in hooks or (config.archs and arch not in config.archs):
            continue
        targets.append(SAETarget(hook, arch, folder, run.root / "evals" / hook / arch, run.heldout(hook),
                                 run.root / "features" / hook, run.root / "evals" / "cache" / hook))
    if not targets:
        raise ValueError(f"no SAEs of architectures {list(config.archs)} at {list(hooks)} in {run.root}")
    model = (info.get("config") or {}).get("model")
    return targets, model


def folder_targets(folders: Sequence[Path], run_root: Path | None, out: Path | None) -> list[SAETarget]:
    """SAE folders (superscope's or SAELens') evaluated at the hook their cfg.json names, results in
    ``<out>/<hook>/<folder name>/``: with a run, against its held-out activations and cache, ``out``
    defaulting to the run's evals/; without one, ``out`` or else ``<folder>/evals/``."""
    from superscope.analyses.runs.folder import RunFolder

    run = RunFolder(Path(run_root)) if run_root is not None else None
    if run is not None:
        run.read()
    targets = []
    for folder in map(Path, folders):
        hook = sae_hook(folder)
        if run is not None:
            base = Path(out) if out is not None else run.root / "evals"
            out_dir, cache, heldout = base / hook / folder.name, run.root / "evals" / "cache" / hook, run.heldout(hook)
        elif out is not None:
            out_dir, cache, heldout = Path(out) / hook / folder.name, Path(out) / "cache" / hook, None
        else:
            out_dir, cache, heldout = folder / "evals", folder / "evals" / "cache", None
        targets.append(SAETarget(hook, folder.name, folder, out_dir, heldout, None, cache))
    return targets


def sae_hook(folder: Path) -> str:
    """The hook an SAE folder's cfg.json names (superscope: hook_name; SAELens: metadata.hook_name)."""
    cfg_path = Path(folder) / "cfg.json"
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"SAE folder not found: {folder}")
    cfg = read_json(cfg_path, "SAE config")
    hook = cfg.get("hook_name") or (cfg.get("metadata") or {}).get("hook_name")
    if not hook:
        raise ValueError(f"{cfg_path} names no hook (hook_name); the suite needs the hook the SAE reads")
    return str(hook)


def load_any_sae(folder: Path, device: str):
    """A superscope SAE folder, or a SAELens one (cfg.json + sae_weights.safetensors) imported from disk."""
    from superscope.saes import load_sae
    from superscope.saes.interop import SAELENS_WEIGHTS, import_saelens

    if (Path(folder) / SAELENS_WEIGHTS).is_file():
        return import_saelens(folder).to(device).eval()
    return load_sae(folder, device=device).eval()


def check_width(sae: Any, target: SAETarget, d_model: int | None) -> None:
    """One clear line when the SAE cannot read the activations at its hook."""
    from superscope.activations.shards import read_manifest

    d_in = sae.cfg.d_in
    if d_model is not None and target.hook.rsplit(".", 1)[-1] in MODEL_WIDTH_HOOKS and d_in != d_model:
        raise ValueError(f"SAE {target.folder} has d_in={d_in} but the model's d_model is {d_model} at "
                         f"{target.hook}: it was trained on another model; pass that model with --model")
    manifest = target.heldout_dir / "manifest.json" if target.heldout_dir is not None else None
    if manifest is not None and manifest.is_file():
        d = int(read_manifest(target.heldout_dir)["d"])
        if d != d_in:
            raise ValueError(f"SAE {target.folder} has d_in={d_in} but the held-out activations at {target.hook} "
                             f"have d={d}: evaluate it at the hook and model it was trained on")


# ---- running ---------------------------------------------------------------------------------------
def summarise(name: str, result: Any, as_dict: dict) -> dict[str, Any]:
    """The scalars of a result for the table (the metric's summary function, else its top-level scalars or
    its headline), NaN as None."""
    entry = METRICS.get(name)
    fn = getattr(importlib.import_module(entry.module), entry.summary) if entry and entry.summary else None
    if fn is not None:
        summary = fn(as_dict)
    else:
        summary = {k: as_dict[k] for k in TOP_LEVEL_SUMMARY if k in as_dict} or headline_summary(result)
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in summary.items()}


def write_result(path: Path, head: dict, result: Any = None, config: Any = None, seconds: float = 0.0,
                 error: str | None = None) -> Path:
    """Write one result file (atomically): the result's to_dict() at the top level and the suite's record
    (``head`` = metric, hook, architecture, sae, quick; config, time, summary or error) under "suite"; a
    result with a ``details_file()`` method gets its bulky columns written beside it (``details_path``)."""
    if error is not None:
        info: dict[str, Any] = {"error": error}
        as_dict: dict = {}
    else:
        as_dict = result.to_dict()
        info = {"config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config,
                "elapsed_s": round(seconds, 2), "summary": summarise(head["metric"], result, as_dict)}
    suite = {**head, **info, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    details = getattr(result, "details_file", None) if error is None else None
    if details is not None:  # written first: the result file is what marks the metric done
        write_json(details_path(path), details())
    else:
        details_path(path).unlink(missing_ok=True)  # a stale one from an earlier result
    return write_json(path, {**{k: v for k, v in as_dict.items() if k != "suite"}, "suite": suite})


def run_metric(name: str, sae: Any, context: EvalContext, quick: bool, config: Any = None) -> tuple[Any, Any]:
    """Evaluate one metric with ``config`` (default: its quick() or full configuration); (result, config)."""
    config_cls, evaluate, _ = metric_parts(name)
    if config is None:
        config = config_cls.quick() if quick else config_cls()
    return evaluate(sae, context, config), config


def run_suite(run_root: str | Path | None, config: SuiteConfig | None = None, saes: Sequence[str | Path] = (),
              out: str | Path | None = None, heldout: str | Path | None = None,
              load_model: Callable[[], Any] | None = None, overrides: dict[str, Any] | None = None,
              log: Callable[[str], None] = print) -> SuiteReport:
    """Evaluate the run's SAEs (or the SAE folders ``saes``; with a run, against its held-out activations)
    with every selected metric; results under ``<run>/evals/`` (or ``out``). ``load_model`` replaces the
    model loader (tests); ``heldout`` is a shard folder for SAE folders evaluated outside a run;
    ``overrides`` maps a metric to the config object to use instead of its quick() / full one."""
    from tqdm.auto import tqdm

    config = config or SuiteConfig()
    t_start = time.perf_counter()
    if saes:
        targets, model_name = folder_targets([Path(s) for s in saes], Path(run_root) if run_root else None,
                                             Path(out) if out else None), None
        if run_root is not None:
            model_name = (read_json(Path(run_root) / "run.json").get("config") or {}).get("model")
        if heldout is not None:
            targets = [dataclasses.replace(t, heldout_dir=Path(heldout)) for t in targets]
    elif run_root is not None:
        targets, model_name = run_targets(Path(run_root), config)
    else:
        raise ValueError("give a run folder or SAE folders (--sae DIR)")
    model_name = config.model or model_name
    loader = load_model or functools.cache(lambda: load_named_model(model_name, config.device))
    names = config.selected
    needs_model = any(METRICS[n].needs_model and (config.force or not is_done(t.out_dir / f"{n}.json", config.quick))
                      for t in targets for n in names)  # a resumed suite with nothing left to do loads no model
    saes_loaded = {t: load_any_sae(t.folder, config.device) for t in targets}
    contexts: dict[str, EvalContext] = {}
    for t, sae in saes_loaded.items():  # bad input fails here, before any work, with one line
        ctx = contexts.setdefault(t.hook, EvalContext(t.hook, loader, t.cache_dir, t.heldout_dir, t.features_root))
        d_model = int(ctx.model.cfg.d_model) if needs_model and hasattr(ctx.model, "cfg") else None
        check_width(sae, t, d_model)
    report = SuiteReport()
    bar = tqdm(total=len(targets) * len(names), desc="evals", unit="metric")
    for t, sae in saes_loaded.items():
        context = contexts[t.hook].for_sae(t.folder)
        for name in names:
            path = t.out_dir / f"{name}.json"
            bar.set_postfix_str(f"{t.name} {name}", refresh=False)
            if not config.force and is_done(path, config.quick):
                report.records.append(SuiteRecord(t.hook, t.name, name, "skipped", path))
                bar.update()
                continue
            head = {"metric": name, "hook": t.hook, "architecture": t.name, "sae": str(t.folder),
                    "quick": config.quick}
            t0 = time.perf_counter()
            try:
                result, used = run_metric(name, sae, context, config.quick, (overrides or {}).get(name))
                record = SuiteRecord(t.hook, t.name, name, "written", path, time.perf_counter() - t0)
                write_result(path, head, result, used, record.seconds)
            except Exception as err:  # one metric's failure must not stop the others
                record = SuiteRecord(t.hook, t.name, name, "failed", path, time.perf_counter() - t0, one_line(err))
                write_result(path, head, error=record.error)
            report.records.append(record)
            log(f"[evals] {t.hook} {t.name} {name}: {record.status} in {record.seconds:.1f} s"
                + (f" — {record.error}" if record.error else ""))
            bar.update()
    bar.close()
    report.seconds = time.perf_counter() - t_start
    return report


def load_named_model(name: str | None, device: str) -> Any:
    """The model a run names (None, "" or "embedded": the embedded SmolLM2-135M-Instruct)."""
    from superscope.activations import load_model

    return load_model(None if name in (None, "", "embedded") else name, device=device)
