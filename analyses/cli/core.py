"""`superscope cache | train | eval | export | run`: the core subcommands. Each is a config dataclass
(options and --help generated from its fields) and a function that does the work."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from superscope.analyses.cli.options import add_command, from_args


@dataclass
class DataConfig:
    """Where training / evaluation activations come from."""

    activations: str = ""
    """A shard folder written by `superscope cache` (…/<hook>/)."""
    out: str = "runs/sae"
    """Output folder for the SAE (cfg.json, sae.safetensors, train_log.jsonl, checkpoints/)."""


@dataclass
class EvaluateConfig:
    """Evaluate a saved SAE on a shard folder at its hook."""

    sae: str = ""
    """SAE folder (cfg.json + sae.safetensors)."""
    activations: str = ""
    """Shard folder of held-out activations at the SAE's hook."""
    inference_mode: Literal["batch", "threshold"] | None = None
    """Override the SAE's inference mode (None: as saved)."""
    splice_tokens: int = 0
    """Held-out tokens for CE-loss recovered / KL (0 = skip; loads the model)."""
    model: str | None = None
    """Model for splicing; None = the embedded SmolLM2-135M-Instruct."""
    out: str | None = None
    """Write the metrics JSON here."""

    def __post_init__(self) -> None:
        if not self.sae or not self.activations:
            raise ValueError("--sae and --activations are required (an SAE folder and a shard folder at its hook)")
        if self.splice_tokens < 0:
            raise ValueError(f"--splice-tokens must be >= 0, got {self.splice_tokens}")


@dataclass
class ExportConfig:
    """Export a saved SAE to SAELens' on-disk format."""

    sae: str = ""
    """SAE folder."""
    out: str = ""
    """Output folder (cfg.json + sae_weights.safetensors)."""

    def __post_init__(self) -> None:
        if not self.sae or not self.out:
            raise ValueError("--sae and --out are required")


def evaluate_folder(c: EvaluateConfig) -> dict:
    """Metrics of the SAE at ``c.sae`` on ``c.activations`` (+ splice metrics); written to ``c.out``."""
    from superscope.activations import load_activations
    from superscope.saes import evaluate, load_sae
    from superscope.saes.atomic_io import write_json

    sae = load_sae(c.sae)
    if c.inference_mode:
        sae.cfg.inference_mode = c.inference_mode
    source = load_activations(c.activations)
    if source.d != sae.cfg.d_in:
        raise ValueError(f"activations have d={source.d} but the SAE expects d_in={sae.cfg.d_in}; pass activations of the SAE's hook")
    result = evaluate(sae, source.batches(4096, shuffle=False)).to_dict()
    if c.splice_tokens > 0:
        from superscope.activations import load_model
        from superscope.saes.model_metrics import splice_metrics

        model = load_model(c.model)
        contexts = source.contexts()[: max(1, c.splice_tokens // source.context_len)]
        result["splice"] = splice_metrics(model, {"sae": sae}, source.hook, contexts.split(8),
                                          bos_id=source.meta.get("bos_token_id"))["sae"].to_dict()
    if c.out:
        write_json(c.out, result)
    return result


def export_folder(c: ExportConfig) -> Path:
    """Write the SAE at ``c.sae`` as a SAELens folder at ``c.out``."""
    from superscope.saes import load_sae
    from superscope.saes.interop import export_saelens

    return Path(export_saelens(load_sae(c.sae), c.out))


def _cmd_cache(args: argparse.Namespace) -> None:
    from superscope.analyses.cli.torchrun_harvest import HarvestConfig, report, run_harvest

    c = from_args(HarvestConfig, args)
    report(c, run_harvest(c))


def add_wandb_options(parser: argparse.ArgumentParser) -> None:
    """``--wandb`` / ``--wandb-project``: log the training records to Weights & Biases as well (optional extra)."""
    group = parser.add_argument_group("experiment tracking", "optional: pip install 'superscope[wandb]'")
    group.add_argument("--wandb", action="store_true", help="also log each training record (the lines of "
                       "train_log.jsonl) to Weights & Biases; WANDB_MODE=offline needs no network")
    group.add_argument("--wandb-project", default="superscope", help="W&B project")


def _cmd_train(args: argparse.Namespace) -> None:
    from superscope.activations import load_activations
    from superscope.analyses.pipeline.main_job import epoch_batches
    from superscope.saes import SAEConfig, TrainConfig, train

    data = from_args(DataConfig, args)
    if not data.activations:
        raise ValueError("--activations is required (a folder written by `superscope cache`)")
    source = load_activations(data.activations)
    sae_cfg = from_args(SAEConfig, args, prefix="", d_in=source.d, hook_name=source.hook,
                        model_name=str(source.meta.get("model", "")))
    tc = from_args(TrainConfig, args)
    logger = None
    if getattr(args, "wandb", False):
        from superscope.analyses.runs.wandb_logger import logger_factory
        logger = logger_factory(args.wandb_project, None, data.out)(
            Path(data.out).name, {**sae_cfg.to_dict(), **tc.to_dict(), "activations": data.activations})
    try:
        sae = train(sae_cfg, epoch_batches(source, tc.batch_size, tc.total_tokens, tc.seed), tc, out_dir=data.out,
                    callbacks=[logger] if logger is not None else ())
    finally:
        if logger is not None:
            logger.finish()
    print(f"trained {sae.cfg.architecture} (F={sae.cfg.d_sae}, k={sae.cfg.k}) → {data.out}")


def _cmd_eval(args: argparse.Namespace) -> None:
    result = evaluate_folder(from_args(EvaluateConfig, args))
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list)}, indent=2))


def _cmd_export(args: argparse.Namespace) -> None:
    print(f"SAELens folder → {export_folder(from_args(ExportConfig, args))}")


def _cmd_run(args: argparse.Namespace) -> None:
    from superscope.analyses.pipeline.config import RunConfig
    from superscope.analyses.pipeline.main_job import Pipeline

    cfg = from_args(RunConfig, args)
    factory = None
    if getattr(args, "wandb", False):
        from superscope.analyses.runs.wandb_logger import logger_factory
        factory = logger_factory(args.wandb_project, Path(cfg.run_dir).name, cfg.run_dir)
    root = Pipeline(cfg, train_logger=factory).run_all()
    print(f"run folder: {root}")


def register(subparsers: argparse._SubParsersAction) -> None:
    from superscope.analyses.cli.torchrun_harvest import HarvestConfig
    from superscope.analyses.pipeline.config import RunConfig
    from superscope.saes import SAEConfig, TrainConfig

    add_wandb_options(add_command(subparsers, "run", "the main job: harvest, train TopK/FC/MC, evaluate, sweep, "
                                  "probes, report", _cmd_run, RunConfig))
    add_command(subparsers, "cache", "harvest activations to a shard folder (split over ranks under torchrun)",
                _cmd_cache, HarvestConfig)
    add_wandb_options(add_command(subparsers, "train", "train one SAE on a shard folder", _cmd_train, DataConfig,
                                  (SAEConfig, ("d_in", "input_scale", "hook_name", "model_name", "training")),
                                  TrainConfig))
    add_command(subparsers, "eval", "evaluate an SAE on a shard folder (FVU, L0, dead/dense; CE/KL with the model)",
                _cmd_eval, EvaluateConfig)
    add_command(subparsers, "export", "export an SAE to SAELens' on-disk format", _cmd_export, ExportConfig)
