"""Shared page plumbing: the error guard (a clear st.error instead of a traceback), the selected
run's data, and small display helpers."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import streamlit as st

from superscope.analyses.runs.data import RunData

from . import _cache
from ._state import current_run

log = logging.getLogger("superscope.dashboard")

EXAMPLE_CSS = """<style>
.ex { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; margin: 3px 0; white-space: pre-wrap; }
.ex .act { display: inline-block; min-width: 56px; color: #888; }
.tok { border-radius: 2px; }
.band { margin-top: 6px; font-size: 13px; }
.fstats { font-size: 13px; color: #555; margin: 2px 0; }
</style>"""


def guard(page: Callable[[], None]) -> None:
    """Run a page; any error reading the run becomes one st.error line (details in the server log)."""
    try:
        page()
    except Exception as err:
        log.warning("dashboard page failed: %s", err)
        log.debug("details", exc_info=True)
        st.error(f"Cannot show this page: {err}")


def run_and_data() -> tuple[Path, RunData]:
    """The selected run folder and its data (errors propagate to ``guard``)."""
    root = current_run()
    return root, _cache.run_data(root)


def df(rows: list[dict]) -> pd.DataFrame:
    """Rows → a DataFrame with NaN for missing numbers (shown blank)."""
    return pd.DataFrame([{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows])


def missing_note(data: RunData) -> None:
    if data.missing():
        with st.expander(f"{len(data.missing())} parts of this run are missing or unreadable"):
            for line in data.missing():
                st.write("• " + line)
