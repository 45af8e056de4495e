"""`superscope cache | train | eval | export | run`: the core subcommands (options from dataclasses)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from .dataclass_cli import add_dataclass_args, from_args


@dataclass
class CacheConfig:
    """Harvest activations at one or more hooks to a shard folder."""

    out: str = "runs/cache"
    """Output folder; shards go to <out>/<hook>/ (re-running resumes)."""
    hooks: tuple[str, ...] = ("blocks.15.hook_resid_post",)
    """TransformerLens hook names."""
    n_tokens: int = 100_000
    """Tokens to harvest."""
    model: str | None = None
    """Model name or folder; None = embedded SmolLM2-135M-Instruct."""
    corpus: str = "default"
    """'default', a local text/jsonl path, or an HF dataset name."""
    split: str = "train"
    """Corpus split: train or eval (held-out)."""
    context_len: int = 128
    """Tokens per context."""
    batch_size: int = 16
    """Contexts per forward pass."""
    dtype: str = "float32"
    """Storage dtype: float32, bfloat16 or float16."""
    seed: int = 0
    """Corpus order seed."""


@dataclass
class DataConfig:
    """Where training / evaluation activations come from."""

    activations: str = ""
    """A shard folder written by `superscope cache` (…/<hook>/)."""
    out: str = "runs/sae"
    """Output folder for the SAE (cfg.json, sae.safetensors, train_log.jsonl, checkpoints/)."""


def _cmd_cache(args: argparse.Namespace) -> None:
    from superscope.activations import harvest, load_model
    from superscope.activations.corpus import Corpus

    c = from_args(CacheConfig, args)
    model = load_model(c.model)
    sources = harvest(model, list(c.hooks), c.n_tokens, corpus=Corpus(c.corpus, split=c.split), out_dir=c.out,
                      context_len=c.context_len, batch_size=c.batch_size, dtype=c.dtype, seed=c.seed)
    for hook, src in sources.items():
        print(f"{hook}: {src.n_tokens} tokens, d={src.d} → {Path(c.out) / hook}")


def _cmd_train(args: argparse.Namespace) -> None:
    from superscope.activations import load_activations
    from superscope.saes import SAEConfig, TrainConfig, train

    from .pipeline import epoch_batches

    data = from_args(DataConfig, args)
    if not data.activations:
        raise ValueError("--activations is required (a folder written by `superscope cache`)")
    source = load_activations(data.activations)
    sae_cfg = from_args(SAEConfig, args, prefix="", d_in=source.d, hook_name=source.hook,
                        model_name=str(source.meta.get("model", "")))
    tc = from_args(TrainConfig, args)
    sae = train(sae_cfg, epoch_batches(source, tc.batch_size, tc.total_tokens, tc.seed), tc, out_dir=data.out)
    print(f"trained {sae.cfg.architecture} (F={sae.cfg.d_sae}, k={sae.cfg.k}) → {data.out}")


def _cmd_eval(args: argparse.Namespace) -> None:
    from superscope.activations import load_activations
    from superscope.saes import evaluate, load_sae
    from superscope.saes.atomic_io import write_json

    sae = load_sae(args.sae)
    if args.inference_mode:
        sae.cfg.inference_mode = args.inference_mode
    source = load_activations(args.activations)
    if source.d != sae.cfg.d_in:
        raise ValueError(f"activations have d={source.d} but the SAE expects d_in={sae.cfg.d_in}; pass activations of the SAE's hook")
    result = evaluate(sae, source.batches(4096, shuffle=False)).to_dict()
    if args.splice_tokens > 0:
        from superscope.activations import load_model
        from superscope.saes.model_metrics import splice_metrics

        model = load_model(args.model)
        contexts = source.contexts()[: max(1, args.splice_tokens // source.context_len)]
        result["splice"] = splice_metrics(model, {"sae": sae}, source.hook, contexts.split(8),
                                          bos_id=source.meta.get("bos_token_id"))["sae"].to_dict()
    if args.out:
        write_json(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list)}, indent=2))


def _cmd_export(args: argparse.Namespace) -> None:
    from superscope.saes import load_sae
    from superscope.saes.interop import export_saelens

    print(f"SAELens folder → {export_saelens(load_sae(args.sae), args.out)}")


def _cmd_run(args: argparse.Namespace) -> None:
    from .pipeline import Pipeline
    from .run_config import RunConfig

    root = Pipeline(from_args(RunConfig, args)).run_all()
    print(f"run folder: {root}")


def register(subparsers: argparse._SubParsersAction) -> None:
    from superscope.saes import SAEConfig, TrainConfig

    from .run_config import RunConfig

    p = subparsers.add_parser("run", help="the main job: harvest, train TopK/FC/MC, evaluate, sweep, probes, report")
    add_dataclass_args(p, RunConfig)
    p.set_defaults(func=_cmd_run)

    p = subparsers.add_parser("cache", help="harvest activations to a shard folder")
    add_dataclass_args(p, CacheConfig)
    p.set_defaults(func=_cmd_cache)

    p = subparsers.add_parser("train", help="train one SAE on a shard folder")
    add_dataclass_args(p, DataConfig)
    add_dataclass_args(p, SAEConfig, skip=("d_in", "input_scale", "hook_name", "model_name", "training"))
    add_dataclass_args(p, TrainConfig)
    p.set_defaults(func=_cmd_train)

    p = subparsers.add_parser("eval", help="evaluate an SAE on a shard folder (FVU, L0, dead/dense; CE/KL with the model)")
    p.add_argument("--sae", required=True, help="SAE folder (cfg.json + sae.safetensors)")
    p.add_argument("--activations", required=True, help="shard folder of held-out activations at the SAE's hook")
    p.add_argument("--inference-mode", choices=["batch", "threshold"], default=None, help="override the SAE's inference mode")
    p.add_argument("--splice-tokens", type=int, default=0, help="held-out tokens for CE-loss recovered / KL (0 = skip; loads the model)")
    p.add_argument("--model", default=None, help="model for splicing; default: the embedded SmolLM2-135M")
    p.add_argument("--out", default=None, help="write the metrics JSON here")
    p.set_defaults(func=_cmd_eval)

    p = subparsers.add_parser("export", help="export an SAE to SAELens' on-disk format")
    p.add_argument("--sae", required=True, help="SAE folder")
    p.add_argument("--out", required=True, help="output folder (cfg.json + sae_weights.safetensors)")
    p.set_defaults(func=_cmd_export)
