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
    """``--runs-root`` / ``--run`` from the script arguments (after ``--``), else the environment."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--runs-root", default=None)
    parser.add_argument("--run", default=None)
    known = [a for a in argv if a.split("=")[0] in ("--runs-root", "--run")]
    args, _ = parser.parse_known_args(_with_values(argv, known))
    root = args.runs_root or os.environ.get(ENV_ROOT) or "runs"
    return Settings(Path(root).expanduser(), args.run or os.environ.get(ENV_RUN) or None)


def _with_values(argv: list[str], known: list[str]) -> list[str]:
    """Only our two options and their values (other argv, e.g. pytest's, is ignored)."""
    out = []
    for i, a in enumerate(argv):
        if a in known:
            out.append(a)
            if "=" not in a and i + 1 < len(argv):
                out.append(argv[i + 1])
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
