"""The dashboard's server process: import what the pages need, then hand over to ``streamlit run``.

Streamlit imports a page's modules when a session first runs it, inside that request: the first page a
user opened paid for importing torch, pandas, plotly and the report sections (about 3 s of a 6.6 s first
load of Overview on 2 cores). This program imports them before the server starts listening, so the cost
moves to the server start — Streamlit prints its URL (and answers its health check) about 3 s later —
and no page's first load pays it; ``warm_up`` does the same for plotly's and pandas' first-use costs.
Everything after that is Streamlit's own command line.

    python -m superscope.dashboards.server run dashboards/app.py --server.port 8501 -- --runs-root runs

``dashboards.launch.streamlit_command`` builds this command line for ``superscope dashboard``, the browser
tests and the page-load benchmark.
"""

from __future__ import annotations

import importlib
import sys
import time

PRELOAD = (
    "torch",
    "pandas",
    "plotly.graph_objects",
    "plotly.subplots",
    "superscope.saes",
    "superscope.analyses.runs.data",
    "superscope.analyses.runs.evals",
    "superscope.analyses.features.storage",
    "superscope.analyses.report",
    "scipy.stats",  # the probes' confidence intervals (1.6 s on its own)
    "superscope.probes",
    "superscope.probes.bfs.checkpoint",
    "superscope.interventions.run_folder",
    "superscope.analyses.evals.autointerp",
    "superscope.analyses.runs.token_features",
)
"""Modules every page (or the first one) imports, heavy ones first. Not the dashboard's own modules: their
``st.cache_data`` functions must be created inside Streamlit's runtime (which exists once the server runs)."""


def preload(modules: tuple[str, ...] = PRELOAD) -> float:
    """Import ``modules``; returns the seconds it took."""
    start = time.perf_counter()
    for name in modules:
        importlib.import_module(name)
    return time.perf_counter() - start


def warm_up() -> float:
    """Build, serialize and style once what pages build on their first run: plotly creates each trace type's
    validators on first use (a first figure of bars, lines and histograms costs ~0.15 s, later ones ~0.02 s)
    and pandas' Styler loads its jinja2 templates on first use. Returns the seconds it took."""
    import pandas as pd
    from plotly.subplots import make_subplots

    start = time.perf_counter()
    fig = make_subplots(rows=1, cols=2, subplot_titles=("a", "b"), specs=[[{"secondary_y": True}, {}]])
    fig.add_bar(x=["a"], y=[1.0], text=["1"], textposition="outside", row=1, col=1)
    fig.add_scatter(x=[0, 1], y=[1.0, 2.0], mode="lines+markers", row=1, col=1, secondary_y=True)
    fig.add_histogram(x=[1.0, 2.0], row=1, col=2)
    fig.add_heatmap(z=[[0.0, 1.0]], row=1, col=2)
    fig.add_hline(y=1.0, row=1, col=1)
    fig.update_layout(title="warm-up", height=300, legend={"orientation": "h"})
    fig.to_json()
    pd.DataFrame({"a": [1.0, None], "b": ["x", "y"]}).style.format({"a": "{:.3g}"}).to_html()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    seconds = preload() + warm_up()
    print(f"superscope: dashboard modules imported in {seconds:.1f} s", flush=True)
    from streamlit.web import cli

    cli.main(args=sys.argv[1:] if argv is None else argv, prog_name="streamlit")


if __name__ == "__main__":
    main()
