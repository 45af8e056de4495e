"""Probes on a run folder: the work behind ``superscope probe entropy | function-tokens`` and the main
job's probe step (one config dataclass and one function each). Results go to ``<run>/probes/<name>.json``
(atomically) or to ``out``; the SAEs are read from ``saes/<hook>/<arch>/`` and the activations from
``heldout/<hook>/`` (else ``activations/<hook>/``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from superscope.probes.result_files import write_json_atomic

SOURCES = ("heldout", "activations")


@dataclass
class RunProbeConfig:
    """Which SAEs and activations of a run folder a probe reads, and where it writes."""

    run: str = ""
    """Run folder runs/<name>; the result goes to <run>/probes/<probe>.json."""
    out: str | None = None
    """Write the JSON here instead of <run>/probes/<probe>.json."""
    hook: tuple[str, ...] = ()
    """Hooks to probe (default: every hook with an SAE)."""
    arch: tuple[str, ...] = ()
    """SAE architectures to probe (default: all)."""
    source: Literal["heldout", "activations"] | None = None
    """Activations to read (default: heldout if present)."""
    max_tokens: int | None = None
    """Stop after this many tokens per SAE."""
    batch_size: int = 4096
    """Tokens per batch."""

    def __post_init__(self) -> None:
        if not self.run:
            raise ValueError("--run runs/<name> is required (a run folder with trained SAEs)")
        if self.batch_size <= 0:
            raise ValueError(f"--batch-size must be positive, got {self.batch_size}")


@dataclass
class EntropyProbeConfig(RunProbeConfig):
    """Effective features F_eff and ψ per SAE (Bereska et al. 2025)."""

    n_bootstrap: int = 200
    """Bootstrap resamples for the CI."""
    block_tokens: int = 256
    """Consecutive tokens per bootstrap block (the SAE still encodes whole batches)."""
    seed: int = 0
    """Bootstrap seed."""


@dataclass
class FunctionTokensProbeConfig(RunProbeConfig):
    """Token–feature graph and coverage table (Zhang et al. 2025)."""

    coverage: float = 0.4
    """Occurrence share defining function tokens."""
    top_k: int = 100
    """Coverage curve up to this many tokens."""
    rank_by: Literal["frequency", "degree"] = "frequency"
    """Ranking of the top-k tokens."""
    with_model: bool = False
    """Load the run's model: linguistic function words, decoded tokens and the next-token loss split."""
    loss_contexts: int = 64
    """Contexts for the loss split (with --with-model)."""


def _run_root(run: str) -> Path:
    root = Path(run)
    if not root.is_dir():
        raise FileNotFoundError(f"run folder {str(root)!r} does not exist; pass --run runs/<name> of an existing run")
    return root


def output_path(run: str | None, out: str | None, name: str) -> Path:
    """Where a probe writes: ``out`` if given, else ``<run>/probes/<name>.json``."""
    if out:
        return Path(out)
    if run:
        return _run_root(run) / "probes" / f"{name}.json"
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


def entropy_probe(c: EntropyProbeConfig) -> Path:
    """``superscope probe entropy``: F_eff and ψ of every selected SAE of the run; returns the JSON's path."""
    from superscope.probes.superposition_entropy import effective_features
    from superscope.saes import load_sae

    root = _run_root(c.run)
    results = []
    for hook, arch, folder in find_saes(root, list(c.hook), list(c.arch)):
        source = activation_source(root, hook, c.source)
        sae = load_sae(folder)
        sae.eval()
        ef = effective_features(sae, source.batches(c.batch_size, shuffle=False), n_bootstrap=c.n_bootstrap,
                                max_tokens=c.max_tokens, label=f"{hook}/{arch}", seed=c.seed,
                                block_tokens=c.block_tokens)
        results.append({"hook": hook, "architecture": arch, **ef.to_dict()})
        print(f"{hook}/{arch}: F_eff = {ef.f_eff:.1f}, ψ = {ef.psi:.2f} over {ef.n_tokens} tokens")
    return write_json_atomic(output_path(c.run, c.out, "superposition_entropy"), {"probe": "entropy", "results": results})


def function_tokens_probe(c: FunctionTokensProbeConfig, model: Any = None) -> Path:
    """``superscope probe function-tokens``: the token–feature graph per hook (one architecture: the
    first selected); ``model`` (or, with ``c.with_model``, the run's model) adds decoded tokens,
    linguistic function words and the next-token loss split. Returns the JSON's path."""
    from superscope.probes.function_tokens import coverage_table, function_token_graph
    from superscope.saes import load_sae

    root = _run_root(c.run)
    saes = find_saes(root, list(c.hook), list(c.arch))
    arch = saes[0][1]  # one architecture for the table: the first (or the one asked for)
    extra: dict[str, Any] = {}
    if model is None and c.with_model:
        model = _load_run_model(root)
    if model is not None:
        from superscope.probes.function_tokens import linguistic_function_tokens

        tok = model.tokenizer
        extra = {"linguistic_ids": linguistic_function_tokens(tok), "decode": lambda t: tok.decode([int(t)])}
    graphs, per_hook = {}, {}
    for hook, a, folder in saes:
        if a != arch:
            continue
        source = activation_source(root, hook, c.source)
        sae = load_sae(folder)
        sae.eval()
        graph = function_token_graph(sae, source.pairs(c.batch_size), max_tokens=c.max_tokens,
                                     function_coverage=c.coverage, top_k=c.top_k, rank_by=c.rank_by,
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
        out["loss_split"] = _loss_split(model, activation_source(root, next(iter(graphs)), c.source),
                                        next(iter(graphs.values())).function_ids, c.loss_contexts)
    return write_json_atomic(output_path(c.run, c.out, "function_tokens"), out)


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
    from superscope.probes.function_tokens import next_token_losses
    from superscope.probes.transition_loss import TransitionLossAccumulator

    contexts = source.contexts()[:n_contexts]
    if contexts.numel() == 0:
        raise ValueError("the activation source has no stored contexts for the loss split")
    acc = TransitionLossAccumulator(function_ids)
    for chunk in contexts.split(8):
        acc.add(chunk, next_token_losses(model, chunk))
    return {**acc.result().to_dict(), "n_contexts": int(contexts.shape[0])}
