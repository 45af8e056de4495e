"""The probes step of ``superscope run``: superposition entropy per layer × architecture, and the
function-token graph (coverage table over layers, loss split by token type) at every layer.

Writes ``probes/superposition_entropy.json`` and ``probes/function_tokens.json`` in the run folder.
Both read the held-out activations, so no probe sees the SAEs' training tokens.
"""

from __future__ import annotations

from typing import Any

import torch

from superscope.probes._io import json_safe
from superscope.probes.function_tokens import (
    coverage_table,
    frequency_function_tokens,
    function_token_graph,
    linguistic_function_tokens,
    loss_by_transition,
    next_token_losses,
)
from superscope.probes.superposition_entropy import effective_features
from superscope.saes import load_sae
from superscope.saes.atomic_io import write_json

from .run_config import RunConfig
from .run_folder import RunFolder


def entropy_results(run: RunFolder, hooks: list[str], archs: tuple[str, ...], batch_size: int) -> list[dict]:
    from superscope.activations import load_activations

    results = []
    for hook in hooks:
        held = load_activations(run.heldout(hook))
        for arch in archs:
            folder = run.sae(hook, arch)
            if not (folder / "sae.safetensors").exists():
                raise FileNotFoundError(f"the entropy probe needs the {arch} SAE at {hook}: {folder} is missing; "
                                        "run the train/sweep steps first")
            sae = load_sae(folder)
            ef = effective_features(sae, held.batches(batch_size, shuffle=False), label=f"{hook}/{arch}")
            results.append({"hook": hook, "architecture": arch, **ef.to_dict()})
    return results


def function_token_results(run: RunFolder, hooks: list[str], arch: str, model: Any) -> dict:
    from superscope.activations import load_activations

    tokenizer = model.tokenizer
    graphs, per_hook = {}, {}
    for hook in hooks:
        held = load_activations(run.heldout(hook))
        sae = load_sae(run.sae(hook, arch))
        graph = function_token_graph(sae, held.pairs(4096), label=f"{hook}/{arch}",
                                     linguistic_ids=linguistic_function_tokens(tokenizer),
                                     decode=lambda t: tokenizer.decode([int(t)]))
        graphs[hook] = graph
        per_hook[hook] = graph.to_dict(max_tokens=500)
    main = next(iter(graphs.values()))
    held = load_activations(run.heldout(hooks[0]))
    contexts = held.contexts()[:64]
    losses = torch.cat([next_token_losses(model, chunk) for chunk in contexts.split(8)])
    split = loss_by_transition(contexts, losses, main.function_ids)
    table = coverage_table(graphs)
    return {"architecture": arch, "graphs": per_hook, "coverage_table": table.to_dict(),
            "loss_split": split.to_dict()}


def run_probes(run: RunFolder, cfg: RunConfig, model: Any) -> dict:
    hooks = sorted(cfg.all_hooks, key=lambda h: int(h.split(".")[1]) if h.split(".")[1].isdigit() else 0)
    entropy = entropy_results(run, hooks, cfg.archs, cfg.batch_size)
    write_json(run.probe("superposition_entropy"), json_safe({"n_neurons": entropy[0]["n_neurons"] if entropy else None,
                                                             "results": entropy}))
    ft = {arch: function_token_results(run, hooks, arch, model) for arch in cfg.archs[:1]}
    write_json(run.probe("function_tokens"), json_safe(ft[cfg.archs[0]]))
    return {"entropy_results": len(entropy)}
