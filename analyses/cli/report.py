"""`superscope report RUN` (write runs/<run>/report.html) and `superscope dashboard [RUN]` (Streamlit)."""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

from superscope.analyses.cli.options import HelpFormatter, add_dataclass_args, from_args
from superscope.dashboards.launch import streamlit_command


def _cmd_report(args: argparse.Namespace) -> None:
    from superscope.analyses.report import ReportConfig, write_report

    run = Path(args.run)
    if not (run / "run.json").is_file():
        raise FileNotFoundError(f"{run} is not a superscope run folder (no run.json); give runs/<name>")
    cfg = from_args(ReportConfig, args)
    path = write_report(run, cfg, out=Path(args.out) if args.out else None)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, self-contained: open it in a browser)")


def _cmd_dashboard(args: argparse.Namespace) -> None:
    runs_root, run = Path(args.runs_root), args.run
    if run and Path(run).parent != Path("."):  # `superscope dashboard runs/foo`: root = its parent
        runs_root, run = Path(run).parent, Path(run).name
    if not runs_root.is_dir():
        raise FileNotFoundError(f"runs root {runs_root} does not exist; create a run with `superscope run` first")
    cmd = streamlit_command(runs_root, run, args.port, args.headless)
    print(" ".join(cmd))
    raise SystemExit(subprocess.call(cmd, env=os.environ.copy()))


def register(subparsers) -> None:
    """Add `report` and `dashboard` to a `superscope` argparse subparsers object."""
    from superscope.analyses.report import ReportConfig

    rep = subparsers.add_parser("report", help="write runs/<run>/report.html (self-contained, offline)",
                                formatter_class=HelpFormatter)
    rep.add_argument("run", help="run folder, e.g. runs/default")
    rep.add_argument("--out", help="write the report here instead of <run>/report.html")
    add_dataclass_args(rep, ReportConfig)
    rep.set_defaults(func=_cmd_report)

    dash = subparsers.add_parser("dashboard", help="browse runs in the Streamlit dashboard",
                                 formatter_class=HelpFormatter)
    dash.add_argument("run", nargs="?", help="run to open: a name inside --runs-root, or runs/<name>")
    dash.add_argument("--runs-root", default="runs", help="folder holding the run folders (only these are read)")
    dash.add_argument("--port", type=int, help="server port (default: Streamlit's, 8501)")
    dash.add_argument("--headless", action="store_true", help="do not open a browser")
    dash.set_defaults(func=_cmd_dashboard)
