"""The superscope dashboard: a Streamlit multipage app over run folders (reads only; never trains).

    superscope dashboard [RUN]                     # = streamlit run dashboards/app.py -- --runs-root runs [--run RUN]
    streamlit run dashboards/app.py -- --runs-root runs --run default

Pages: Overview · Feature browser · SAE comparison · Live prompt · Superposition · Function tokens ·
BFS thoughts · Evaluations · Steering. The sidebar picks the run (only folders inside the runs root are read).
"""

from __future__ import annotations

import streamlit as st

from superscope.dashboards._state import sidebar_run_picker

PAGES = (
    ("overview.py", "Overview", "overview", ":material/home:"),
    ("features.py", "Feature browser", "features", ":material/search:"),
    ("compare.py", "SAE comparison", "compare", ":material/compare_arrows:"),
    ("live.py", "Live prompt", "live", ":material/keyboard:"),
    ("superposition.py", "Superposition", "superposition", ":material/stacked_line_chart:"),
    ("function_tokens.py", "Function tokens", "function_tokens", ":material/hub:"),
    ("bfs.py", "BFS thoughts", "bfs", ":material/account_tree:"),
    ("evals.py", "Evaluations", "evals", ":material/leaderboard:"),
    ("steering.py", "Steering", "steering", ":material/tune:"),
)

st.set_page_config(page_title="superscope", page_icon=":material/biotech:", layout="wide")
navigation = st.navigation([st.Page(f"views/{f}", title=t, url_path=u, icon=i, default=(u == "overview"))
                            for f, t, u, i in PAGES])
st.sidebar.markdown("**superscope** — superposition workbench")
run_path = sidebar_run_picker()
st.sidebar.radio("Figures download as", ("png", "svg"), key="figure_format", horizontal=True, format_func=str.upper,
                 help="the format of the camera button in each figure's toolbar")
st.session_state["run_path"] = str(run_path) if run_path is not None else None
navigation.run()
