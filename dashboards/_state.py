"""Which run the dashboard shows, and the rule that it never reads outside the runs root.

Settings come from (first found): session state (set by the sidebar), the query string
(``?run=NAME``), the command line after ``--`` (``--runs-root DIR --run RUN``), the environment
(``SUPERSCOPE_RUNS_ROOT``, ``SUPERSCOPE_RUN``), else ``runs`` and the newest run. A run is named by a
folder inside the runs root; any name or path that resolves outside it is refused.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

ENV_ROOT, ENV_RUN = "SUPERSCOPE_RUNS_ROOT", "SUPERSCOPE_RUN"


class RunRefused(ValueError):
    """A run name or path that points outside the runs root."""


@dataclass(frozen=True)
class Settings:
    runs_root: Path
    run: str | None


def command_line(argv: list[str] | None = None) -> Settings:
    """``--runs-root DIR`` / ``--run RUN`` (or a bare run folder, ``-- runs/<run>``) from the script
    arguments, else the environment. Other arguments (e.g. pytest's, under AppTest) are ignored."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--runs-root", default=None)
    parser.add_argument("--run", default=None)
    args, rest = parser.parse_known_args(_ours(argv))
    root, run = args.runs_root, args.run
    for arg in rest:  # `streamlit run dashboards/app.py -- runs/<run>` (DESIGN.md)
        if not arg.startswith("-") and (Path(arg) / "run.json").is_file() and root is None:
            root, run = str(Path(arg).resolve().parent), Path(arg).resolve().name
    root = root or os.environ.get(ENV_ROOT) or "runs"
    return Settings(Path(root).expanduser(), run or os.environ.get(ENV_RUN) or None)


def _ours(argv: list[str]) -> list[str]:
    """Our two options with their values, and bare arguments; everything else is dropped."""
    out, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        name = a.split("=")[0]
        if name in ("--runs-root", "--run"):
            out.append(a)
            if "=" not in a and i + 1 < len(argv):
                out.append(argv[i + 1])
                skip = True
        elif not a.startswith("-"):
            out.append(a)
    return out


def list_runs(runs_root: Path) -> list[str]:
    """Names of the folders in the runs root that hold a run.json, newest first."""
    if not runs_root.is_dir():
        return []
    runs = [p for p in runs_root.iterdir() if p.is_dir() and (p / "run.json").is_file()]
    return [p.name for p in sorted(runs, key=lambda p: (p / "run.json").stat().st_mtime, reverse=True)]


def resolve_run(runs_root: Path, run: str) -> Path:
    """The run folder for a name (or a path) — refused unless it lies inside the runs root."""
    root = runs_root.resolve()
    candidate = Path(run).expanduser()
    path = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if path == root or not path.is_relative_to(root):
        raise RunRefused(f"refused: {run!r} is outside the runs root {root}; the dashboard only reads runs inside it")
    return path


def sidebar_run_picker() -> Path | None:
    """Draw the run selector in the sidebar; remember the choice; return the run folder (or None)."""
    settings = command_line()
    root = Path(st.session_state.get("runs_root") or settings.runs_root)
    st.session_state["runs_root"] = str(root)
    runs = list_runs(root)
    wanted = st.query_params.get("run") or st.session_state.get("run") or settings.run
    if wanted and wanted not in runs:
        try:
            path = resolve_run(root, wanted)
            if path.parent != root.resolve():
                raise RunRefused(f"refused: {wanted!r} is not a folder directly inside the runs root {root.resolve()}")
        except RunRefused as err:
            st.session_state["run_error"] = str(err)
            return None
        runs, wanted = [path.name, *runs], path.name  # shown even without run.json: the pages say what is wrong
    st.session_state.pop("run_error", None)
    if not runs:
        st.session_state["run_error"] = (f"no runs in {root.resolve()}: create one with `superscope run`, or start "
                                         "the dashboard with `superscope dashboard --runs-root DIR`")
        return None
    index = runs.index(wanted) if wanted in runs else 0
    choice = st.sidebar.selectbox("Run", runs, index=index, key="run_select")
    st.session_state["run"] = choice
    if st.query_params.get("run") != choice:
        st.query_params["run"] = choice
    st.sidebar.caption(f"runs root: {root.resolve()}")
    return resolve_run(root, choice)


def current_run() -> Path:
    """The selected run folder for a page; shows the reason and stops the page when there is none."""
    err = st.session_state.get("run_error")
    path = st.session_state.get("run_path")
    if err or not path:
        st.error(err or "no run selected")
        st.stop()
    return Path(path)
