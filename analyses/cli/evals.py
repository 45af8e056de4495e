"""`superscope evals RUN_DIR [--metrics ...] [--quick] [--sweep] [--sae DIR ...]`: the offline evaluation
suite (specs/evals.md) on a run's SAEs, on SAE folders (superscope's or SAELens'), and the L0 sweep.

    superscope evals runs/default                         # every metric on the main hook's SAEs
    superscope evals runs/default --quick --metrics core  # what `superscope run` runs, core only
    superscope evals runs/default --sae my_sae/           # a further SAE against the run's held-out data
    superscope evals --sae saelens_folder/ --out evals/ --activations heldout/blocks.15.hook_resid_post
    superscope evals runs/default --sweep                 # train k in {8..128} per architecture, then evaluate
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from superscope.analyses.cli.options import add_command, add_dataclass_args, from_args


@dataclass
class EvalsOptions:
    """Where the SAEs come from and where results go."""

    sae: tuple[str, ...] = ()
    """SAE folders to evaluate (superscope or SAELens format; the hook is read from their cfg.json). With
    RUN_DIR they use its held-out activations and results go to RUN_DIR/evals/<hook>/<folder name>/."""
    out: str | None = None
    """Results folder for --sae without RUN_DIR (default: <sae>/evals/)."""
    activations: str | None = None
    """Held-out shard folder at the SAEs' hook, for --sae without RUN_DIR (needed by the core metrics)."""
    sweep: bool = False
    """Also run the L0 sweep (trains every architecture at each --sweep-ks; minutes per SAE on 2 cores)."""


def run_evals(run_dir: str | None, suite, opts: EvalsOptions, sweep_cfg=None, log=print):
    """The suite (and the sweep) as the command runs it; returns the suite's and the sweep's reports."""
    from superscope.analyses.evals.suite import run_suite
    from superscope.analyses.evals.sweep import run_sweep

    if not run_dir and not opts.sae:
        raise ValueError("give a run folder (RUN_DIR) or SAE folders (--sae DIR ...)")
    if opts.sweep and not run_dir:
        raise ValueError("--sweep trains on a run's cached activations: give RUN_DIR")
    report = run_suite(run_dir, suite, saes=opts.sae, out=opts.out, heldout=opts.activations, log=log)
    sweep = None
    if opts.sweep:
        sweep = run_sweep(run_dir, sweep_cfg, metrics=suite.metrics, force=suite.force, log=log)
    return report, sweep


def _cmd_evals(args: argparse.Namespace) -> None:
    from superscope.analyses.evals.suite import SuiteConfig
    from superscope.analyses.evals.sweep import SweepConfig

    suite = from_args(SuiteConfig, args)
    opts = from_args(EvalsOptions, args)
    sweep_cfg = from_args(SweepConfig, args, prefix="sweep-") if opts.sweep else None
    report, sweep = run_evals(args.run_dir, suite, opts, sweep_cfg)
    print(report.table())
    if sweep is not None:
        print("L0 sweep:\n" + sweep.table())
    if args.run_dir:
        print_table(args.run_dir)


def print_table(run_dir: str) -> None:
    """The SAE × metric table of the run's results."""
    from superscope.analyses.report.page import fmt
    from superscope.analyses.runs.evals import load_evals

    data = load_evals(run_dir)
    for hook in data.hooks:
        rows = data.table_rows(hook)
        cols = list(dict.fromkeys(k for r in rows for k in r))
        print(f"\n{hook}")
        print(" | ".join(cols))
        for r in rows:
            print(" | ".join(fmt(r.get(c)) for c in cols))
    for line in data.unreadable:
        print(f"unreadable: {line}")


def register(subparsers: argparse._SubParsersAction) -> None:
    from superscope.analyses.evals.suite import SuiteConfig
    from superscope.analyses.evals.sweep import SweepConfig

    parser = add_command(subparsers, "evals", "the offline evaluation suite (core, sparse probing, absorption, "
                         "autointerp) on a run's SAEs or SAE folders; --sweep for the L0 sweep", _cmd_evals,
                         SuiteConfig, EvalsOptions)
    parser.add_argument("run_dir", nargs="?", default=None, metavar="RUN_DIR", help="run folder (runs/<run>)")
    add_dataclass_args(parser, SweepConfig, prefix="sweep-", skip=("quick",), title="L0 sweep (with --sweep)")
