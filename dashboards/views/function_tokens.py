"""Function tokens: coverage of features by the most frequent tokens, degree vs rank, loss split,
and one token's feature set on the held-out tokens (probes/function_tokens.json + a live query)."""

from __future__ import annotations

import streamlit as st

from superscope.analyses.report import probe_sections as P
from superscope.dashboards import _cache
from superscope.dashboards._ui import df, guard, run_and_data
from superscope.saes.registry import arch_label


def _token_set(root, data, ft) -> None:
    st.subheader("A token's feature set")
    graphs = ft.get("graphs") or {}
    hooks = [h for h in graphs if (root / "saes" / h / ft.get("architecture", "")).exists()]
    if not hooks:
        st.info("The SAEs the probe used are not in this run, so token feature sets cannot be computed.")
        return
    c = st.columns(2)
    hook = c[0].selectbox("Hook", hooks, index=hooks.index(data.main_hook) if data.main_hook in hooks else 0)
    g = graphs[hook]
    ids, labels = g.get("token_ids") or [], g.get("labels") or []
    n = min(len(labels), len(ids), 200)
    if n == 0:
        st.info("The probe result lists no tokens.")
        return
    i = c[1].selectbox("Token (by frequency rank)", list(range(n)),
                       format_func=lambda i: f"#{i + 1} {labels[i]!r} (degree {g['degrees'][i]})")
    res = _cache.token_features(root, hook, ft["architecture"], ids[i])
    st.write(f"{labels[i]!r} occurs {res['n_occurrences']} times in {res['tokens_scanned']} held-out tokens and "
             f"activates **{len(res['features'])} distinct features** of the {arch_label(ft['architecture'])} SAE.")
    st.dataframe(df([{"feature": f, "fired on the token": c, "mean activation": m} for f, c, m in res["features"][:200]]),
                 hide_index=True, height=240)


def page() -> None:
    root, data = run_and_data()
    st.title("Function tokens")
    ft = data.probes.get("function_tokens")
    if ft is None:
        st.warning(f"No function-token result: {data.probe_errors.get('function_tokens')}. "
                   "The probes step of `superscope run` writes it.")
        return
    st.caption(f"Token–feature graph of the {arch_label(ft.get('architecture', ''))} SAEs (Zhang, Lin, Li 2025): "
               "a few frequent function tokens activate most features.")
    st.subheader("Coverage of active features by the top-k tokens (%)")
    st.dataframe(df(P.coverage_rows(ft)), hide_index=True)
    c1, c2 = st.columns(2)
    c1.plotly_chart(P.coverage_figure(ft), key="cov")
    c2.plotly_chart(P.degree_figure(ft), key="deg")
    if ft.get("loss_split"):
        st.plotly_chart(P.loss_split_figure(ft), key="loss")
    st.dataframe(df(P.shares_rows(ft)), hide_index=True)
    _token_set(root, data, ft)


guard(page)
