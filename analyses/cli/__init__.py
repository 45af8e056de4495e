"""The ``superscope`` command and the torchrun programs.

Each subcommand module (core, probe, bfs, report, evals) exposes ``register(subparsers)``; a command is a config
dataclass (options and --help from ``options``) plus a function that does the work, which the pipeline
calls too. ``torchrun_train`` and ``torchrun_harvest`` are the programs torchrun starts."""

from __future__ import annotations

import argparse
import sys

from superscope.analyses.cli import bfs, core, evals, probe, report, steer

SUBCOMMANDS = (core, probe, bfs, report, evals, steer)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="superscope", description="Superposition workbench: SAEs, probes, reports, dashboard.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv  # what was typed, for the provenance some results record
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, TypeError, OSError) as err:
        print(f"superscope {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"superscope {args.command}: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
