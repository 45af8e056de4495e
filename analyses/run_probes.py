"""The probes step of ``superscope run``: the same code as ``superscope probe entropy`` and
``superscope probe function-tokens --with-model`` on the run folder (one implementation).

Writes ``probes/superposition_entropy.json`` (every hook × architecture) and
``probes/function_tokens.json`` (every hook, the first architecture; coverage table over the layers
and the next-token loss split), both from the held-out activations, and ``probes/bfs.json``: the
BFS-superposition probe (``superscope bfs probe``) of the Coconut model shipped with the package on
freshly generated reachability problems (it does not depend on the language model).
"""

from __future__ import annotations

from typing import Any

from .run_config import RunConfig
from .run_folder import RunFolder


def run_probes(run: RunFolder, cfg: RunConfig, model: Any = None) -> dict:
    """Run the probes on ``run`` (the model is loaded through the per-process cache, so the one
    the pipeline already holds is reused)."""
    from .cli import build_parser

    root, parser = str(run.root), build_parser()
    commands = [
        ["probe", "entropy", "--run", root, "--source", "heldout", "--batch-size", str(cfg.batch_size),
         "--seed", str(cfg.seed)],
        ["probe", "function-tokens", "--run", root, "--source", "heldout", "--arch", cfg.archs[0], "--with-model"],
        ["bfs", "probe", "--run", root, "--checkpoint", "coconut"],
    ]
    for argv in commands:
        args = parser.parse_args(argv)
        args.func(args)
    return {"probes": ["superposition_entropy", "function_tokens", "bfs"]}
