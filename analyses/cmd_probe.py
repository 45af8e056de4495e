"""`superscope probe entropy | function-tokens | toy-validation | scaling-toy`.

Each writes `runs/<run>/probes/<file>.json` (atomically) when given `--run` (superposition_entropy, function_tokens,
toy-validation, scaling-toy: the names the report and dashboard read), or the file `--out`.
entropy and function-tokens read a run's SAEs (`saes/<hook>/<arch>/`) and activations (`heldout/<hook>/`
by default, else `activations/<hook>/`); the toy probes need no run.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from superscope.probes._io import write_json_atomic

SOURCES = ("heldout", "activations")


def _run_root(args: argparse.Namespace) -> Path:
    root = Path(args.run)
    if not root.is_dir():
        raise FileNotFoundError(f"run folder {str(root)!r} does not exist; pass --run runs/<name> of an existing run")
    return root


def _output(args: argparse.Namespace, name: str) -> Path:
    if getattr(args, "out", None):
        return Path(args.out)
    if getattr(args, "run", None):
        return _run_root(args) / "probes" / f"{name}.json"
    raise ValueError(f"`superscope probe {name}` needs --run runs/<name> or --out FILE.json")


def find_saes(root: Path, hooks: list[str] | None, archs: list[str] | None) -> list[tuple[str, str, Path]]:
    """(hook, arch, folder) of the run's SAEs matching the filters; a clear error when none match."""
    found = [(p.parent.parent.name, p.parent.name, p.parent) for p in sorted((root / "saes").glob("*/*/sae.safetensors"))]
    if hooks:
        for hook in hooks:
            for arch in archs or []:
                folder = root / "saes" / hook / arch
                if not (folder / "sae.safetensors").is_file() or not (folder / "cfg.json").is_file():
                    raise FileNotFoundError(f"run {root} has no SAE at {folder} (cfg.json + sae.safetensors); "
                                            "train it first (`superscope train` or `superscope run`)")
        found = [f for f in found if f[0] in hooks]
    if archs:
        found = [f for f in found if f[1] in archs]
    if not found:
        raise FileNotFoundError(f"run {root} has no trained SAE{' matching the filters' if hooks or archs else ''} "
                                f"under saes/<hook>/<arch>/; train one first (`superscope train` or `superscope run`)")
    return found


def activation_source(root: Path, hook: str, source: str | None) -> Any:
    """The run's activations at `hook` (held-out first unless `source` names one)."""
    from superscope.activations import load_activations

    for name in ([source] if source else SOURCES):
        folder = root / name / hook
        if folder.is_dir():
            return load_activations(folder)
    looked = " and ".join(f"{n}/{hook}" for n in ([source] if source else SOURCES))
    raise FileNotFoundError(f"run {root} has no activations for {hook} (looked in {looked}); "
                            "harvest them first (`superscope cache` or `superscope run`)")


def _cmd_entropy(args: argparse.Namespace) -> None:
    from superscope.probes.superposition_entropy import effective_features
    from superscope.saes import load_sae

    root = _run_root(args)
    results = []
    for hook, arch, folder in find_saes(root, args.hook, args.arch):
        source = activation_source(root, hook, args.source)
        sae = load_sae(folder)
        sae.eval()
        ef = effective_features(sae, source.batches(args.batch_size, shuffle=False), n_bootstrap=args.n_bootstrap,
                                max_tokens=args.max_tokens, label=f"{hook}/{arch}", seed=args.seed,
                                block_tokens=args.block_tokens)
        results.append({"hook": hook, "architecture": arch, **ef.to_dict()})
        print(f"{hook}/{arch}: F_eff = {ef.f_eff:.1f}, ψ = {ef.psi:.2f} over {ef.n_tokens} tokens")
    path = write_json_atomic(_output(args, "superposition_entropy"), {"probe": "entropy", "results": results})
    print(f"wrote {path}")


def _cmd_function_tokens(args: argparse.Namespace) -> None:
    from superscope.probes.function_tokens import coverage_table, function_token_graph
    from superscope.saes import load_sae

    root = _run_root(args)
    saes = find_saes(root, args.hook, args.arch)
    arch = saes[0][1]  # one architecture for the table: the first (or the one asked for)
    extra: dict[str, Any] = {}
    model = _load_run_model(root) if args.with_model else None
    if model is not None:
        from superscope.probes.function_tokens import linguistic_function_tokens

        tok = model.tokenizer
        extra = {"linguistic_ids": linguistic_function_tokens(tok), "decode": lambda t: tok.decode([int(t)])}
    graphs, per_hook = {}, {}
    for hook, a, folder in saes:
        if a != arch:
            continue
        source = activation_source(root, hook, args.source)
        sae = load_sae(folder)
        sae.eval()
        graph = function_token_graph(sae, source.pairs(args.batch_size), max_tokens=args.max_tokens,
                                     function_coverage=args.coverage, top_k=args.top_k, rank_by=args.rank_by,
                                     label=f"{hook}/{arch}", **extra)
        graphs[hook], per_hook[hook] = graph, graph.to_dict()
        share = graph.shares["frequency"]
        print(f"{hook}/{arch}: {graph.n_edges} edges, top-10 cover {100 * graph.coverage[min(9, len(graph.coverage) - 1)]:.1f} %, "
              f"function tokens touch {100 * share['function']:.1f} % of features")
    out: dict[str, Any] = {"probe": "function-tokens", "architecture": arch, "graphs": per_hook}
    if all(len(g.coverage) >= 10 for g in graphs.values()):
        table = coverage_table(graphs)
        out["coverage_table"] = table.to_dict()
        print(table.markdown())
    if model is not None:
        out["loss_split"] = _loss_split(model, activation_source(root, next(iter(graphs)), args.source),
                                        next(iter(graphs.values())).function_ids, args.loss_contexts)
    path = write_json_atomic(_output(args, "function_tokens"), out)
    print(f"wrote {path}")


def _load_run_model(root: Path) -> Any:
    import json

    from superscope.activations import load_model

    run_json = root / "run.json"
    name = None
    if run_json.is_file():
        cfg = json.loads(run_json.read_text()).get("config", {})
        name = cfg.get("model")
    return load_model(name)


def _loss_split(model: Any, source: Any, function_ids: tuple[int, ...], n_contexts: int) -> dict:
    from superscope.probes._transition_loss import TransitionLossAccumulator
    from superscope.probes.function_tokens import next_token_losses

    contexts = source.contexts()[:n_contexts]
    if contexts.numel() == 0:
        raise ValueError("the activation source has no stored contexts for the loss split")
    acc = TransitionLossAccumulator(function_ids)
    for chunk in contexts.split(8):
        acc.add(chunk, next_token_losses(model, chunk))
    return {**acc.result().to_dict(), "n_contexts": int(contexts.shape[0])}


def _cmd_toy_validation(args: argparse.Namespace) -> None:
    from superscope.analyses.toy_superposition import (
        ToyValidationConfig,
        run_toy_validation,
    )

    cfg = ToyValidationConfig.quick() if args.quick else ToyValidationConfig()
    cfg = replace(cfg, seed=args.seed, **({"sae_archs": tuple(args.archs)} if args.archs else {}),
                  **({"sae_k": args.k} if args.k else {}))
    out = _output(args, "toy-validation")
    result = run_toy_validation(cfg)
    for arch, r in result.pearson_r.items():
        knob = f"λ={cfg.sae_l1_coef}" if arch == "l1" else f"k={cfg.sae_k}"
        print(f"{arch} {knob}: Pearson r(ψ_SAE, ψ_true) = {r:.3f} (paper 0.94 ± 0.02)")
    print(f"wrote {write_json_atomic(out, {'probe': 'toy-validation', **result.to_dict()})}")


def _cmd_scaling_toy(args: argparse.Namespace) -> None:
    from superscope.analyses.scaling_sweep import ScalingSweepConfig, run_scaling_sweep

    cfg = ScalingSweepConfig.quick() if args.quick else ScalingSweepConfig()
    if args.steps:
        cfg.toy = replace(cfg.toy, steps=args.steps)
    out = _output(args, "scaling-toy")
    result = run_scaling_sweep(cfg)
    print(result.markdown())
    print(f"wrote {write_json_atomic(out, {'probe': 'scaling-toy', **result.to_dict()})}")


def _common(p: argparse.ArgumentParser, run_required: bool) -> None:
    p.add_argument("--run", required=run_required, help="run folder runs/<name>; output goes to <run>/probes/")
    p.add_argument("--out", default=None, help="write the JSON here instead of <run>/probes/<name>.json")


def _run_probe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hook", nargs="+", default=None, help="hooks to probe (default: every hook with an SAE)")
    p.add_argument("--arch", nargs="+", default=None, help="SAE architectures to probe (default: all)")
    p.add_argument("--source", choices=SOURCES, default=None, help="activations to read (default: heldout if present)")
    p.add_argument("--max-tokens", type=int, default=None, help="stop after this many tokens per SAE")
    p.add_argument("--batch-size", type=int, default=4096, help="tokens per batch")


def register(subparsers: Any) -> None:
    """Add `probe` with its sub-subcommands to the `superscope` parser."""
    fmt = argparse.ArgumentDefaultsHelpFormatter
    probe = subparsers.add_parser("probe", help="run one probe on a run folder (or a toy)", formatter_class=fmt)
    sub = probe.add_subparsers(dest="probe", metavar="PROBE", required=True)

    p = sub.add_parser("entropy", help="effective features F_eff and ψ per SAE (Bereska et al. 2025)", formatter_class=fmt)
    _common(p, True)
    _run_probe_args(p)
    p.add_argument("--n-bootstrap", type=int, default=200, help="bootstrap resamples for the CI")
    p.add_argument("--block-tokens", type=int, default=256,
                   help="consecutive tokens per bootstrap block (the SAE still encodes whole batches)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.set_defaults(func=_cmd_entropy)

    p = sub.add_parser("function-tokens", help="token–feature graph, coverage table (Zhang et al. 2025)", formatter_class=fmt)
    _common(p, True)
    _run_probe_args(p)
    p.add_argument("--coverage", type=float, default=0.4, help="occurrence share defining function tokens")
    p.add_argument("--top-k", type=int, default=100, help="coverage curve up to this many tokens")
    p.add_argument("--rank-by", choices=("frequency", "degree"), default="frequency", help="ranking of the top-k tokens")
    p.add_argument("--with-model", action="store_true",
                   help="load the run's model: linguistic function words, decoded tokens and the next-token loss split")
    p.add_argument("--loss-contexts", type=int, default=64, help="contexts for the loss split (with --with-model)")
    p.set_defaults(func=_cmd_function_tokens)

    p = sub.add_parser("toy-validation", help="ψ from SAEs vs ground truth on toy models (Elhage setting)",
                       formatter_class=fmt)
    _common(p, False)
    p.add_argument("--quick", action="store_true", help="small sweep (about a minute)")
    p.add_argument("--archs", nargs="+", default=None, help="SAE variants to compare")
    p.add_argument("--k", type=int, default=None, help="SAE k")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_toy_validation)

    p = sub.add_parser("scaling-toy", help="loss exponent under weak/strong superposition (Liu et al. 2025)",
                       formatter_class=fmt)
    _common(p, False)
    p.add_argument("--quick", action="store_true", help="tiny smoke sweep (seconds; exponents not trustworthy)")
    p.add_argument("--steps", type=int, default=None, help="Adam steps per law")
    p.set_defaults(func=_cmd_scaling_toy)
