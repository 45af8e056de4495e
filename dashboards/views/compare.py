"""SAE comparison: TopK / Feature Choice / Mutual Choice side by side at one hook — metrics, per-token
L0 distributions, per-token L0 against token difficulty (adaptive allocation), density, training, sweep."""

from __future__ import annotations

import streamlit as st

from superscope.analyses.report import sae_sections as S
from superscope.dashboards import _cache
from superscope.dashboards._ui import df, guard, run_and_data
from superscope.saes.registry import arch_label


def page() -> None:
    root, data = run_and_data()
    st.title("SAE comparison")
    if not data.hooks:
        st.warning("This run has no SAEs yet (saes/ is empty).")
        return
    hook = st.selectbox("Hook", data.hooks, index=data.hooks.index(data.main_hook), key="compare_hook")
    entries = data.at(hook)
    st.dataframe(df(S.comparison_rows(data, hook)), hide_index=True)
    cols = st.columns(len(entries))
    for col, e in zip(cols, entries):
        with col:
            st.markdown(f"#### {arch_label(e.arch)}")
            if e.error:
                st.warning(e.error)
            ev = e.eval
            if ev:
                st.metric("FVU", f"{ev.get('fvu', float('nan')):.3f}")
                st.metric("L0", f"{ev.get('l0_mean', float('nan')):.1f} ± {ev.get('l0_std', float('nan')):.1f}")
                dead_train = ev.get("dead_train_frac")
                st.metric("dead in training", "n/a" if dead_train is None else f"{100 * dead_train:.2f} %",
                          help="no fire in the last dead_tokens training tokens (the AuxK rule)")
                st.metric("silent on held-out", f"{100 * ev.get('dead_frac', float('nan')):.1f} %",
                          help="no fire on the held-out tokens; on a short eval set rare features count too")
            if e.splice:
                st.metric("CE-loss recovered", f"{e.splice.get('ce_loss_recovered', float('nan')):.3f}")
    st.plotly_chart(S.metrics_figure(data, hook), key="metrics")
    st.subheader("Per-token L0")
    tab_dist, tab_diff = st.tabs(["L0 distribution", "L0 vs token difficulty"])
    with tab_dist:
        st.plotly_chart(S.l0_figure(data, hook), key="l0")
    with tab_diff:
        n = st.select_slider("held-out tokens", options=[512, 1024, 2048, 4096, 8192], value=2048)
        heldout = root / "heldout" / hook / "manifest.json"
        if not heldout.exists():
            st.info(f"Needs held-out activations at {hook} (heldout/{hook}/ is missing).")
        else:
            res = _cache.difficulty(root, hook, n)
            st.plotly_chart(res.figure(), key="difficulty")
            st.dataframe(df([{"SAE": k, "Spearman ρ(L0, difficulty)": res.spearman[k], "FVU": res.fvu[k]}
                             for k in res.l0_by_bin]), hide_index=True)
            st.caption("Difficulty = the TopK SAE's per-token reconstruction error. TopK spends k features on "
                       "every token; FC / MC can spend more on hard tokens (rising curve, ρ > 0).")
    c1, c2 = st.columns(2)
    c1.plotly_chart(S.density_figure(data, hook), key="density")
    c2.plotly_chart(S.training_figure(data, hook), key="training")
    if len(data.hooks) > 1:
        st.plotly_chart(S.sweep_figure(data), key="sweep")


guard(page)
