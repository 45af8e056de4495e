"""SAE comparison: every SAE of one hook side by side — the metrics table and bars, per-token L0
distributions, per-token L0 against token difficulty (adaptive allocation), density, training, sweep.
The hook and the open per-token L0 view are in the URL (``?hook=``, ``?l0_view=``)."""

from __future__ import annotations

import streamlit as st

from superscope.analyses.report import sae_sections as S
from superscope.analyses.report.difficulty import DASHBOARD_TOKEN_OPTIONS, DASHBOARD_TOKENS
from superscope.dashboards import _cache
from superscope.dashboards._ui import chart, guard, query_choice, run_and_data, table
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
    if not data.hooks:
        st.warning("This run has no SAEs yet (saes/ is empty).")
        return
    hook = query_choice("Hook", data.hooks, "hook", default=data.main_hook, key="compare_hook")
    for e in data.at(hook):
        if e.error:
            st.warning(f"{arch_label(e.arch)}: {e.error}")
    table(S.comparison_rows(data, hook), key="comparison", file_name=f"{data.name}_{hook}_comparison.csv")
    chart(S.metrics_figure(data, hook), key="metrics")
    st.subheader("Per-token L0")
    # only the open tab runs (?l0_view= in the URL): the difficulty view encodes held-out tokens
    tab_dist, tab_diff = st.tabs(["L0 distribution", "L0 vs token difficulty"], key="l0_view", bind="query-params")
    if tab_dist.open is not False:  # None: a Streamlit without lazy tabs runs both
        with tab_dist:
            chart(S.l0_figure(data, hook), key="l0")
    if tab_diff.open is not False:
        with tab_diff:
            _difficulty(root, data, hook)
    c1, c2 = st.columns(2)
    chart(S.density_figure(data, hook), key="density", container=c1)
    chart(S.training_figure(data, hook), key="training", container=c2)
    if len(data.hooks) > 1:
        chart(S.sweep_figure(data), key="sweep")


guard(page)
