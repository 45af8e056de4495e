"""The dashboard's server process: import what the pages need, then hand over to ``streamlit run``.

Streamlit imports a page's modules when a session first runs it, inside that request: the first page a
user opened paid for importing torch, pandas, plotly and the report sections (about 3 s of a 6.6 s first
load of Overview on 2 cores). This program imports them before the server starts listening, so the cost
moves to the server start — Streamlit prints its URL (and answers its health check) about 3 s later —
and no page's first load pays it. Everything after the imports is Streamlit's own command line.

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
)
"""Modules every page (or the first one) imports, heavy ones first. Not the dashboard's own modules: their
``st.cache_data`` functions must be created inside Streamlit's runtime (which exists once the server runs)."""


def preload(modules: tuple[str, ...] = PRELOAD) -> float:
    """Import ``modules``; returns the seconds it took."""
    start = time.perf_counter()
    for name in modules:
        importlib.import_module(name)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    seconds = preload()
    print(f"superscope: dashboard modules imported in {seconds:.1f} s", flush=True)
    from streamlit.web import cli

    cli.main(args=sys.argv[1:] if argv is None else argv, prog_name="streamlit")


if __name__ == "__main__":
    main()
