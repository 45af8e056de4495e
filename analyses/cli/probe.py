"""`superscope probe entropy | function-tokens | toy-validation | scaling-toy`.

Each writes `runs/<run>/probes/<file>.json` (atomically) when given `--run` (superposition_entropy, function_tokens,
toy-validation, scaling-toy: the names the report and dashboard read), or the file `--out`.
entropy and function-tokens read a run's SAEs (`saes/<hook>/<arch>/`) and activations (`heldout/<hook>/`
by default, else `activations/<hook>/`); the toy probes need no run.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass
from typing import Any

from superscope.analyses.cli.options import HelpFormatter, add_command, from_args
from superscope.analyses.runs.probes import (
    EntropyProbeConfig,
    FunctionTokensProbeConfig,
    entropy_probe,
    function_tokens_probe,
    output_path,
)
from superscope.probes.result_files import write_json_atomic


def _cmd_entropy(args: argparse.Namespace) -> None:
    print(f"wrote {entropy_probe(from_args(EntropyProbeConfig, args))}")


def _cmd_function_tokens(args: argparse.Namespace) -> None:
    print(f"wrote {function_tokens_probe(from_args(FunctionTokensProbeConfig, args))}")


def _provenance(argv_tail: list[str]) -> dict:
    from superscope.analyses.runs.folder import package_versions

    return {"command": shlex.join(["superscope", *argv_tail]), "versions": package_versions()}


def _cmd_toy_validation(args: argparse.Namespace) -> None:
    from superscope.analyses.toys.superposition import ToyValidationCommand, toy_validation_command

    out = output_path(args.run, args.out, "toy-validation")  # before the work: a missing output fails fast
    payload = toy_validation_command(from_args(ToyValidationCommand, args))
    print(f"wrote {write_json_atomic(out, {'probe': 'toy-validation', **_provenance(getattr(args, 'argv', [])), **payload})}")


def _cmd_scaling_toy(args: argparse.Namespace) -> None:
    from superscope.analyses.toys.scaling_sweep import ScalingSweepCommand, scaling_sweep_command

    out = output_path(args.run, args.out, "scaling-toy")
    payload = scaling_sweep_command(from_args(ScalingSweepCommand, args))
    print(f"wrote {write_json_atomic(out, {'probe': 'scaling-toy', **_provenance(getattr(args, 'argv', [])), **payload})}")


@dataclass
class ToyOutput:
    """Where a toy probe writes: it needs no run, but --run or --out (the result is the point)."""

    run: str | None = None
    """Run folder runs/<name>; the result goes to <run>/probes/<probe>.json."""
    out: str | None = None
    """Write the JSON here instead."""


def register(subparsers: Any) -> None:
    """Add `probe` with its sub-subcommands to the `superscope` parser."""
    fmt = HelpFormatter
    probe = subparsers.add_parser("probe", help="run one probe on a run folder (or a toy)", formatter_class=fmt)
    sub = probe.add_subparsers(dest="probe", metavar="PROBE", required=True)

    from superscope.analyses.toys.scaling_sweep import ScalingSweepCommand
    from superscope.analyses.toys.superposition import ToyValidationCommand

    add_command(sub, "entropy", "effective features F_eff and ψ per SAE (Bereska et al. 2025)", _cmd_entropy,
                EntropyProbeConfig)
    add_command(sub, "function-tokens", "token–feature graph, coverage table (Zhang et al. 2025)",
                _cmd_function_tokens, FunctionTokensProbeConfig)
    add_command(sub, "toy-validation", "ψ from SAEs vs ground truth on toy models (Elhage setting)",
                _cmd_toy_validation, ToyOutput, ToyValidationCommand)
    add_command(sub, "scaling-toy", "loss exponent under weak/strong superposition (Liu et al. 2025)",
                _cmd_scaling_toy, ToyOutput, ScalingSweepCommand)
