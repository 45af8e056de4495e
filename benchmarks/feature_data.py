"""Feature-data speed: ``write_feature_data`` for the SAEs at one hook of a run over N held-out tokens.

The held-out set is made N tokens long by tiling a run's real held-out contexts (fresh context ids,
each copy's activations jittered by 1 % Gaussian noise so codes are not verbatim repeats); the SAEs are
the run's own. The model (for logit effects) is loaded before timing, as in the pipeline.

    python benchmarks/feature_data.py --run runs/default --tokens 200000 --json out.json
    python benchmarks/feature_data.py --run runs/default --quick
    python benchmarks/feature_data.py --quick          # no run folder: a toy run built in a temp folder
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

from superscope.activations import load_activations, load_model
from superscope.activations.shards import ShardWriter
from superscope.analyses.features import FeatureDataConfig, write_feature_data
from superscope.analyses.runs.folder import RunFolder
from superscope.analyses.runs.toy import build_toy_run, fake_model
from superscope.saes.atomic_io import write_json


def tiled_run(src_run: Path, hook: str, n_tokens: int, out: Path, seed: int = 0) -> RunFolder:
    """A run folder at ``out`` with ``src_run``'s SAEs at ``hook`` and ≥ n_tokens held-out rows."""
    run = RunFolder(out)
    src = load_activations(RunFolder(src_run).heldout(hook))
    shutil.copytree(RunFolder(src_run).root / "saes" / hook, run.root / "saes" / hook,
                    ignore=shutil.ignore_patterns("checkpoints"))
    write_json(run.run_json, {"format": "superscope.run", "name": out.name, "main_hook": hook, "hooks": [hook]})
    acts, ctx, pos, tok = src._field("acts"), *src.locations(), src.token_ids()
    contexts = src.contexts()
    gen = torch.Generator().manual_seed(seed)
    meta = {k: v for k, v in src.meta.items() if k not in ("shards", "n_tokens", "complete", "format", "version")}
    writer = ShardWriter(run.heldout(hook), {**meta, "contexts_per_shard": contexts.shape[0]})
    copy = 0
    while writer.manifest["n_tokens"] < n_tokens:
        noise = torch.randn(acts.shape, generator=gen) * acts.std() * 0.01
        writer.write(copy, copy * contexts.shape[0], {
            "acts": acts + noise, "token_ids": tok, "positions": pos,
            "context_ids": ctx + copy * contexts.shape[0], "contexts": contexts})
        copy += 1
    writer.finish()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="a run folder with SAEs and held-out activations (default: a toy run "
                        "built in a temporary folder, with a toy unembedding instead of the model)")
    parser.add_argument("--hook", help="hook (default: the run's main hook)")
    parser.add_argument("--tokens", type=int, default=200_000, help="held-out tokens to process")
    parser.add_argument("--quick", action="store_true", help="20k tokens (under a minute)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--no-model", action="store_true", help="skip logit effects (no model load)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    n_tokens = 20_000 if args.quick else args.tokens
    with tempfile.TemporaryDirectory(prefix="ss_featbench_") as tmp:
        src_run = Path(args.run) if args.run else build_toy_run(Path(tmp) / "toy", with_features=False)
        hook = args.hook or json.loads((src_run / "run.json").read_text())["main_hook"]
        model = None if args.no_model else (load_model() if args.run else fake_model())
        run = tiled_run(src_run, hook, n_tokens, Path(tmp) / "bench")
        cfg = FeatureDataConfig(max_tokens=n_tokens)
        t0, c0 = time.perf_counter(), time.process_time()
        info = write_feature_data(run, model, hooks=[hook], cfg=cfg)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    result = {"hook": hook, "tokens": info["heldout_tokens"], "saes": len(info["feature_folders"]),
              "features": info["features"], "wall_s": wall, "cpu_s": cpu,
              "features_per_s": info["features"] / wall, "tokens_per_s": info["heldout_tokens"] / wall,
              "sae_tokens_per_s": info["heldout_tokens"] * len(info["feature_folders"]) / wall,
              "logit_effects": model is not None, "threads": torch.get_num_threads()}
    print(f"{'SAEs':>5}{'features':>10}{'tokens':>10}{'wall s':>9}{'cpu s':>9}{'feat/s':>9}{'tok/s':>9}{'SAE·tok/s':>11}")
    print(f"{result['saes']:>5}{result['features']:>10}{result['tokens']:>10}{wall:>9.1f}{cpu:>9.1f}"
          f"{result['features_per_s']:>9.1f}{result['tokens_per_s']:>9.0f}{result['sae_tokens_per_s']:>11.0f}")
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
