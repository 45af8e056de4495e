"""SAE comparison: every SAE of one hook side by side — the metrics table and bars, per-token L0
distributions, per-token L0 against token difficulty (adaptive allocation), density, training, sweep.
The hook and the open detail view are in the URL (``?hook=``, ``?compare_view=``)."""

from __future__ import annotations

import streamlit as st

from superscope.analyses.report import sae_sections as S
from superscope.analyses.report.difficulty import DASHBOARD_TOKEN_OPTIONS, DASHBOARD_TOKENS
from superscope.dashboards import _cache
from superscope.dashboards._ui import chart, guard, missing_note, query_choice, run_and_data, table
from superscope.saes.registry import arch_label


def _difficulty(root, data, hook: str) -> None:
    n = st.select_slider("held-out tokens", options=list(DASHBOARD_TOKEN_OPTIONS), value=DASHBOARD_TOKENS)
    heldout = root / "heldout" / hook / "manifest.json"
    if not heldout.exists():
        st.info(f"Needs held-out activations at {hook} (heldout/{hook}/ is missing).")
        return
    res = _cache.difficulty(root, hook, n)
    chart(res.figure(), key="difficulty")
    table([{"SAE": k, "Spearman ρ(L0, difficulty)": res.spearman[k], "FVU": res.fvu[k]}
           for k in res.l0_by_bin], key="difficulty_table", file_name=f"{data.name}_{hook}_difficulty.csv")
    st.caption("Difficulty = the TopK SAE's per-token reconstruction error. TopK spends k features on "
               "every token; FC / MC can spend more on hard tokens (rising curve, ρ > 0).")


def page() -> None:
    root, data = run_and_data()
    st.title("SAE comparison")
    missing_note(data)
    if not data.hooks:
        st.warning("This run has no SAEs yet (saes/ is empty).")
        return
    hook = query_choice("Hook", data.hooks, "hook", default=data.main_hook, key="compare_hook")
    for e in data.at(hook):
        if e.error:
            st.warning(f"{arch_label(e.arch)}: {e.error}")
    table(S.comparison_rows(data, hook), key="comparison", file_name=f"{data.name}_{hook}_comparison.csv")
    chart(S.metrics_figure(data, hook), key="metrics")
    st.subheader("Details")
    # only the open tab runs (?compare_view= in the URL): the difficulty view encodes held-out tokens, the others
    # are one figure each, drawn when asked for
    views = {"L0 distribution": lambda: chart(S.l0_figure(data, hook), key="l0"),
             "L0 vs token difficulty": lambda: _difficulty(root, data, hook),
             "Firing density": lambda: chart(S.density_figure(data, hook), key="density"),
             "Training": lambda: chart(S.training_figure(data, hook), key="training")}
    if len(data.hooks) > 1:
        views["Layer sweep"] = lambda: chart(S.sweep_figure(data), key="sweep")
    for tab, show in zip(st.tabs(list(views), key="compare_view", bind="query-params"), views.values()):
        if tab.open is not False:  # None: a Streamlit without lazy tabs runs them all
            with tab:
                show()


guard(page)
