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
        n = len(data.missing())
        with st.expander(f"{n} part{'s' if n != 1 else ''} of this run {'are' if n != 1 else 'is'} missing or unreadable"):
            for line in data.missing():
                st.write("• " + line)


# ---- tables, figures, links: what every page uses (numbers by meaning, labelled columns, downloads) ----------

FIGURE_FORMATS = ("png", "svg")


def plotly_config(name: str) -> dict:
    """Plotly modebar config: the camera button saves the figure as PNG (2× scale) or SVG — the format
    picked in the sidebar (``figure_format``) — under ``name``."""
    fmt_ = st.session_state.get("figure_format", "png")
    return {"displaylogo": False, "toImageButtonOptions": {"format": fmt_ if fmt_ in FIGURE_FORMATS else "png",
                                                          "filename": name, "scale": 2}}


def chart(fig, key: str, container=None) -> None:
    """``st.plotly_chart`` with the download config (``plotly_config``)."""
    (container or st).plotly_chart(fig, key=key, config=plotly_config(key))


STYLER_MAX_ROWS = 100
"""Tables up to this many rows are formatted cell by cell (a pandas Styler through formatting.fmt); longer
ones by the grid itself (printf formats per column, ``GRID_FORMATS``), which keeps a 500-row page fast."""
TEXT_CELLS_MAX_ROWS = 20
"""A numeric column with empty cells in a table of up to this many rows (a summary: one row per SAE) is shown as
its formatted text, "–" for the empty cells; in longer tables it stays numeric, so sorting by it stays numeric,
and the grid marks its empty cells itself."""
GRID_FORMATS = {"num": "%.3g", "count": "localized", "pct": "percent", "points": "%.3g %%", "spread": "± %.3g",
                "sci": "%.2e", "seconds": "%.3g s", "id": "%d"}


def _text_width(values) -> int:
    longest = max((len(str(v)) for v in values if v is not None), default=0)
    return int(min(520, max(90, 8 * longest + 28)))


def table(data: list[dict] | pd.DataFrame, key: str, *, container=None, height: int | str = "auto",
          download: bool = True, file_name: str | None = None, columns: list[str] | None = None,
          export: pd.DataFrame | None = None) -> pd.DataFrame:
    """Show a table the way every page does: columns under their human labels with a help tooltip
    (``analyses.runs.labels``), numbers formatted by meaning (``analyses.runs.formatting``; the cells
    stay numbers, so sorting is numeric — except a column with empty cells in a summary table of up to
    ``TEXT_CELLS_MAX_ROWS`` rows, shown as its formatted text with "–" for the empty ones), text columns wide enough not to cut hook names, and a CSV
    download of the raw values (of ``export`` when given, e.g. every filtered row of a table shown in
    part). Returns the raw DataFrame."""
    from functools import partial

    from superscope.analyses.runs.formatting import fmt
    from superscope.analyses.runs.labels import label

    where = container or st
    raw = data.copy() if isinstance(data, pd.DataFrame) else df(data)
    if columns is not None:
        raw = raw[[c for c in columns if c in raw.columns]]
    labels = {c: label(str(c), raw[c].tolist()) for c in raw.columns}
    texts = [lab.text for lab in labels.values()]
    names = {c: (lab.text if texts.count(lab.text) == 1 else str(c)) for c, lab in labels.items()}
    shown = raw.set_axis([names[c] for c in raw.columns], axis=1)
    small = len(raw) <= STYLER_MAX_ROWS
    config, as_text = {}, set()
    for c, lab in labels.items():
        numeric = pd.api.types.is_numeric_dtype(raw[c]) and not pd.api.types.is_bool_dtype(raw[c])
        if not small and numeric and lab.kind in GRID_FORMATS:
            config[names[c]] = st.column_config.NumberColumn(names[c], help=lab.help or None,
                                                             format=GRID_FORMATS[lab.kind])
            continue
        if small and raw[c].isna().any() and (not numeric or len(raw) <= TEXT_CELLS_MAX_ROWS):
            # the grid draws every empty cell as a grey "None", whatever the Styler says: show the formatted text
            shown[names[c]] = [fmt(v, kind=lab.kind) for v in raw[c].tolist()]
            as_text.add(c)
        width = _text_width(raw[c].tolist() + [names[c]]) if lab.kind == "text" else None
        config[names[c]] = st.column_config.Column(names[c], help=lab.help or None, width=width,
                                                   alignment="right" if numeric and c in as_text else None)
    data = shown.style.format({names[c]: partial(fmt, kind=lab.kind) for c, lab in labels.items()
                               if c not in as_text}) if small else shown
    where.dataframe(data, hide_index=True, column_config=config, height=height, key=f"table_{key}")
    if download:
        source = raw if export is None else export  # the CSV is written when the button is pressed (deferred)
        where.download_button("Download CSV", lambda: source.to_csv(index=False).encode(),
                              file_name=file_name or f"{key}.csv", mime="text/csv", key=f"csv_{key}",
                              on_click="ignore", icon=":material/download:")
    return raw


def query_choice(label_: str, options: list, param: str, *, container=None, format_func=str, key: str | None = None,
                 default=None):
    """A selectbox whose choice lives in the URL (``?param=value``), so the URL reopens it: a value in
    the URL that the page has not seen yet (a fresh link, a page link) selects it; a choice the user
    makes is written back."""
    if not options:
        return None
    key = key or f"qp_{param}"
    seen = f"_qp_seen_{param}"
    strs = [str(o) for o in options]
    wanted = st.query_params.get(param)
    if wanted in strs and st.session_state.get(seen) != wanted:
        st.session_state[key] = options[strs.index(wanted)]
    if st.session_state.get(key) not in options:
        st.session_state[key] = default if default in options else options[0]
    value = (container or st).selectbox(label_, options, key=key, format_func=format_func)
    st.query_params[param] = str(value)
    st.session_state[seen] = str(value)
    return value


def page_url(path: str = "", **params) -> str:
    """The absolute URL of dashboard page ``path`` (url path, '' = Overview) with the run and ``params``
    as query parameters — what a "copy link" shows."""
    from urllib.parse import urlencode, urlsplit

    base = urlsplit(st.context.url or "http://localhost:8501/")
    query = {"run": st.query_params.get("run") or st.session_state.get("run") or "", **params}
    return f"{base.scheme}://{base.netloc}/{path}?" + urlencode({k: str(v) for k, v in query.items() if v != ""})


def copy_link(path: str, label_: str = "Link to this view", **params) -> None:
    """A "copy link" button: it opens the view's URL in a code box with a copy button (opening the URL reopens
    the view exactly). Behind a popover because the code box's highlighter costs the page ~0.4 s of browser
    time on every load; the popover draws it when opened."""
    with st.popover(label_, icon=":material/link:"):
        st.caption("Copy with the button on the right; opening the link reopens this view.")
        st.code(page_url(path, **params), language=None)
