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

from superscope.analyses.pipeline.config import RunConfig
from superscope.analyses.runs.folder import RunFolder


def run_probes(run: RunFolder, cfg: RunConfig, model: Any = None) -> dict:
    """Run the probes on ``run`` with the pipeline's ``model`` (loaded once per process when None)."""
    from superscope.analyses.bfs.jobs import BFSProbeCommandConfig, bfs_probe_command
    from superscope.analyses.runs.probes import (
        EntropyProbeConfig,
        FunctionTokensProbeConfig,
        entropy_probe,
        function_tokens_probe,
    )

    root = str(run.root)
    entropy_probe(EntropyProbeConfig(run=root, source="heldout", batch_size=cfg.batch_size, seed=cfg.seed))
    function_tokens_probe(FunctionTokensProbeConfig(run=root, source="heldout", arch=(cfg.archs[0],),
                                                    with_model=True), model=model)
    bfs_probe_command(BFSProbeCommandConfig(run=root, checkpoint="coconut"))
    return {"probes": ["superposition_entropy", "function_tokens", "bfs"]}
