"""Retrain one architecture of a finished run at its main hook with the current code, and record its row.

What ``superscope run`` does for that SAE, step by step, on the run's own activations and settings: the
train step (``Pipeline.train_one``: the run's token budget, batch, lr, aux loss, seed), the evaluate step
(held-out metrics and the spliced CE / KL), its feature data, the evaluation suite (quick, or the full one
with ``--full``), then the report and the dashboard's precomputed caches. The previous folders of that
SAE (weights, feature data, evaluation results) are moved to ``--backup`` first, so nothing is lost.

    python -m superscope.benchmarks.retrain_arch runs/default jumprelu --full \\
        --json benchmarks/results/jumprelu_default_layer15.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from superscope.benchmarks._timing import environment, write_json


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", nargs="?", help="a finished run folder, e.g. runs/default")
    parser.add_argument("arch", nargs="?", default="jumprelu",
                        help="the architecture to retrain at the run's main hook (default: jumprelu)")
    parser.add_argument("--quick", action="store_true", help="without a run folder: only say what is needed")
    parser.add_argument("--full", action="store_true", help="the full evaluation suite (default: the quick one)")
    parser.add_argument("--backup", default=None, help="where the previous folders go (default: <run>/../<run>_backup_<arch>)")
    parser.add_argument("--json", help="write the SAE's row (metrics and evaluation summaries) here")
    args = parser.parse_args(argv)
    if args.run is None:
        if not args.quick:
            parser.error("give a finished run folder (e.g. runs/default)")
        print("retrain_arch: needs a finished run folder (superscope run); skipped")
        if args.json:
            write_json(args.json, {"skipped": "no run folder given", "environment": environment()})
        return

    from superscope.analyses.evals.suite import SuiteConfig, run_suite
    from superscope.analyses.features import write_feature_data
    from superscope.analyses.pipeline.config import RunConfig
    from superscope.analyses.pipeline.main_job import Pipeline
    from superscope.analyses.pipeline.precompute import precompute_dashboard
    from superscope.analyses.report import write_report
    from superscope.analyses.runs.evals import load_evals

    run = Path(args.run)
    info = json.loads((run / "run.json").read_text())
    cfg = RunConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in info["config"].items()})
    if args.arch not in cfg.main_table_archs:
        raise SystemExit(f"{args.arch} is not one of the run's main-hook architectures {cfg.main_table_archs}")
    pipe, hook = Pipeline(cfg), cfg.main_hook
    backup = Path(args.backup) if args.backup else run.parent / f"{run.name}_backup_{args.arch}"
    for sub in ("saes", "features", "evals"):
        src = run / sub / hook / args.arch
        if src.exists():
            (backup / sub).parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(backup / sub, ignore_errors=True)
            shutil.move(str(src), str(backup / sub))
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    pipe.train_one(hook, args.arch, cfg.train_tokens)
    seconds["train"] = time.perf_counter() - t0
    metrics = pipe.evaluate_one(hook, args.arch, splice=True)
    seconds["evaluate"] = time.perf_counter() - t0 - sum(seconds.values())
    write_feature_data(pipe.run, pipe.model, hooks=[hook], archs=[args.arch])
    seconds["features"] = time.perf_counter() - t0 - sum(seconds.values())
    run_suite(run, SuiteConfig(quick=not args.full, hooks=(hook,), archs=(args.arch,), model=cfg.model),
              load_model=lambda: pipe.model)
    seconds["evals"] = time.perf_counter() - t0 - sum(seconds.values())
    write_report(run)
    precompute_dashboard(run)
    seconds["report_precompute"] = time.perf_counter() - t0 - sum(seconds.values())
    row = next(r for r in load_evals(run).table_rows(hook) if r["SAE"] == args.arch)
    ev, splice = metrics["eval"], metrics["splice"]
    out = {"command": "python -m superscope.benchmarks.retrain_arch " + " ".join(sys.argv[1:] if argv is None else argv),
           "run": str(run), "hook": hook, "arch": args.arch, "backup": str(backup),
           "metrics": {"fvu": ev["fvu"], "l0_mean": ev["l0_mean"], "l0_std": ev["l0_std"],
                       "dead_train_frac": ev.get("dead_train_frac"), "silent_heldout_frac": ev["dead_frac"],
                       "ce_loss_recovered": splice["ce_loss_recovered"], "kl_div": splice["kl_div"]},
           "evals_row": row, "seconds": {k: round(v, 1) for k, v in seconds.items()}, "environment": environment()}
    print(json.dumps(out["metrics"], indent=2))
    if args.json:
        write_json(args.json, out)


if __name__ == "__main__":
    main()
