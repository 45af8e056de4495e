"""SAE comparison: TopK / Feature Choice / Mutual Choice side by side at one hook — metrics, per-token
L0 distributions, per-token L0 against token difficulty (adaptive allocation), density, training, sweep.
The hook is in the URL (``?hook=``)."""

from __future__ import annotations

import streamlit as st

from superscope.analyses.report import sae_sections as S
from superscope.analyses.report.difficulty import DASHBOARD_TOKEN_OPTIONS, DASHBOARD_TOKENS
from superscope.analyses.runs.formatting import fmt_num, fmt_pm, fmt_points
from superscope.analyses.runs.labels import label
from superscope.dashboards import _cache
from superscope.dashboards._ui import chart, guard, query_choice, run_and_data, table
from superscope.saes.registry import arch_label


def _metrics(e) -> None:
    st.markdown(f"#### {arch_label(e.arch)}")
    if e.error:
        st.warning(e.error)
    ev = e.eval
    if ev:
        st.metric("FVU", fmt_num(ev.get("fvu")), help=label("FVU").help)
        st.metric("L0", fmt_pm(ev.get("l0_mean"), ev.get("l0_std")), help=label("L0 mean").help + "; ± its std")
        dead_train = ev.get("dead_train_frac")
        st.metric("dead in training", "n/a" if dead_train is None else fmt_points(100 * dead_train),
                  help=label("dead in training %").help)
        st.metric("silent on held-out", fmt_points(100 * ev.get("dead_frac", float("nan"))),
                  help=label("silent on held-out %").help)
    if e.splice:
        st.metric("CE-loss recovered", fmt_num(e.splice.get("ce_loss_recovered")), help=label("CE recovered").help)


def page() -> None:
    root, data = run_and_data()
    st.title("SAE comparison")
    if not data.hooks:
        st.warning("This run has no SAEs yet (saes/ is empty).")
        return
    hook = query_choice("Hook", data.hooks, "hook", default=data.main_hook, key="compare_hook")
    entries = data.at(hook)
    table(S.comparison_rows(data, hook), key="comparison", file_name=f"{data.name}_{hook}_comparison.csv")
    for col, e in zip(st.columns(len(entries)), entries):
        with col:
            _metrics(e)
    chart(S.metrics_figure(data, hook), key="metrics")
    st.subheader("Per-token L0")
    tab_dist, tab_diff = st.tabs(["L0 distribution", "L0 vs token difficulty"])
    with tab_dist:
        chart(S.l0_figure(data, hook), key="l0")
    with tab_diff:
        n = st.select_slider("held-out tokens", options=list(DASHBOARD_TOKEN_OPTIONS), value=DASHBOARD_TOKENS)
        heldout = root / "heldout" / hook / "manifest.json"
        if not heldout.exists():
            st.info(f"Needs held-out activations at {hook} (heldout/{hook}/ is missing).")
        else:
            res = _cache.difficulty(root, hook, n)
            chart(res.figure(), key="difficulty")
            table([{"SAE": k, "Spearman ρ(L0, difficulty)": res.spearman[k], "FVU": res.fvu[k]}
                   for k in res.l0_by_bin], key="difficulty_table", file_name=f"{data.name}_{hook}_difficulty.csv")
            st.caption("Difficulty = the TopK SAE's per-token reconstruction error. TopK spends k features on "
                       "every token; FC / MC can spend more on hard tokens (rising curve, ρ > 0).")
    c1, c2 = st.columns(2)
    chart(S.density_figure(data, hook), key="density", container=c1)
    chart(S.training_figure(data, hook), key="training", container=c2)
    if len(data.hooks) > 1:
        chart(S.sweep_figure(data), key="sweep")


guard(page)
