"""The last step of ``superscope run``: compute now what the dashboard would compute on a page's first
load, and write it into the run folder (``<run>/cache/``), so every page opens in about a second.

Two results today:
- the SAE comparison page's per-token L0 vs difficulty at the main hook on the page's default number of
  held-out tokens (``difficulty.DASHBOARD_TOKENS``): every SAE of the hook encodes those tokens (FC / MC
  in both inference modes);
- the Function tokens page's token feature sets: for each hook of the probe's graphs, the sets of its
  ``token_features.PRECOMPUTE_TOKENS`` most frequent tokens (one pass over the held-out tokens per hook).
A page reads the file when its inputs' signature (the SAE weights' and the held-out manifest's size and
modification time) still matches, and falls back to computing it (with a progress line) otherwise. Only adds files; never rewrites the run's own
(run from the command line, it does not record itself in run.json either).

    python -m superscope.analyses.pipeline.precompute runs/default [--hooks HOOK ...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from superscope.analyses.report.difficulty import (
    DASHBOARD_TOKENS,
    l0_vs_difficulty,
    load_precomputed,
    precomputed_path,
    save_precomputed,
)
from superscope.analyses.runs.folder import RunFolder
from superscope.analyses.runs.token_features import PRECOMPUTE_TOKENS, precompute_token_features


def precompute_dashboard(run_root: str | Path, hooks: list[str] | None = None,
                         tokens: tuple[int, ...] = (DASHBOARD_TOKENS,)) -> dict:
    """Write the dashboard's precomputed results: L0 vs difficulty for ``hooks`` (default: the run's main hook),
    the token feature sets for the function-token graphs' hooks; a result
    already there and fresh is kept. Returns {"made": [what, …], "files": [path in the run, …], "seconds"}."""
    run = RunFolder(Path(run_root))
    info = run.read()
    sae_hooks = sorted({h for h, _, _ in run.sae_folders()})
    if hooks is None:
        main = info.get("main_hook")
        hooks = [main] if main in sae_hooks else sae_hooks[-1:]
    t0 = time.perf_counter()
    made, files = [], []
    for hook in hooks:
        if hook not in sae_hooks:
            raise FileNotFoundError(f"no SAEs at {hook} in {run.root / 'saes'}; choose one of {sae_hooks}")
        if not (run.heldout(hook) / "manifest.json").exists():
            continue  # the page says that it needs held-out activations
        for n in tokens:
            if load_precomputed(run.root, hook, n) is None:
                save_precomputed(run.root, l0_vs_difficulty(run.root, hook, max_tokens=n), n)
            made.append(f"per-token L0 vs difficulty at {hook} on {n:,} tokens")
            files.append(str(precomputed_path(run.root, hook, n).relative_to(run.root)))
    token_files = precompute_token_features(run.root)
    if token_files:
        made.append(f"feature sets of the {PRECOMPUTE_TOKENS} most frequent tokens at {len(token_files)} hooks")
        files += token_files
    return {"made": made, "files": files, "seconds": round(time.perf_counter() - t0, 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="run folder")
    parser.add_argument("--hooks", nargs="*", default=None, help="hooks (default: the main hook)")
    args = parser.parse_args(argv)
    out = precompute_dashboard(args.run, args.hooks)  # run.json is left as it is (`superscope run` records the step)
    print("\n".join(f"wrote {f}" for f in out["files"]) or "nothing to precompute")


if __name__ == "__main__":
    main()
