"""The ``superscope`` command. Each subcommand module exposes ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMAND_MODULES = ("cmd_core", "cmd_probe", "cmd_bfs", "cmd_report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="superscope", description="Superposition workbench: SAEs, probes, reports, dashboard.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"superscope.analyses.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"superscope.analyses.{name}":
                continue  # subcommand not installed in this build
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
