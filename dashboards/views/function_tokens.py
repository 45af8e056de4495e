"""Function tokens: coverage of features by the most frequent tokens, degree vs rank, loss split,
and one token's feature set on the held-out tokens (probes/function_tokens.json + a live query)."""

from __future__ import annotations

import streamlit as st

from superscope.analyses.report import probe_sections as P
from superscope.analyses.runs.formatting import fmt_count
from superscope.dashboards import _cache
from superscope.dashboards._ui import chart, guard, query_choice, run_and_data, table
from superscope.saes.registry import arch_label


def _token_set(root, data, ft) -> None:
    st.subheader("A token's feature set")
    graphs = ft.get("graphs") or {}
    hooks = [h for h in graphs if (root / "saes" / h / ft.get("architecture", "")).exists()]
    if not hooks:
        st.info("The SAEs the probe used are not in this run, so token feature sets cannot be computed.")
        return
    c = st.columns(2)
    hook = query_choice("Hook", hooks, "hook", container=c[0], default=data.main_hook, key="ft_hook")
    g = graphs[hook]
    ids, labels = g.get("token_ids") or [], g.get("labels") or []
    n = min(len(labels), len(ids), 200)
    if n == 0:
        st.info("The probe result lists no tokens.")
        return
    i = query_choice("Token (by frequency rank)", list(range(n)), "token", container=c[1], key="ft_token",
                     format_func=lambda i: f"#{i + 1} {labels[i]!r} (degree {fmt_count(g['degrees'][i])})")
    res = _cache.token_features(root, hook, ft["architecture"], ids[i])
    st.write(f"{labels[i]!r} occurs {fmt_count(res['n_occurrences'])} times in {fmt_count(res['tokens_scanned'])} "
             f"held-out tokens and activates **{fmt_count(len(res['features']))} distinct features** of the "
             f"{arch_label(ft['architecture'])} SAE.")
    table([{"feature": f, "fired on the token": c, "mean activation": m} for f, c, m in res["features"][:200]],
          key="token_features", height=240, file_name=f"token_{ids[i]}_features.csv")


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
    table(P.coverage_rows(ft), key="coverage", file_name=f"{data.name}_function_token_coverage.csv")
    # only the open tab runs (?tokens_view= in the URL)
    views = {"Coverage curve": lambda: chart(P.coverage_figure(ft), key="coverage_curve"),
             "Degree vs rank": lambda: chart(P.degree_figure(ft), key="degree_vs_rank"),
             "Function vs content tokens": lambda: table(P.shares_rows(ft), key="feature_shares",
                                                         file_name=f"{data.name}_function_token_shares.csv")}
    if ft.get("loss_split"):
        views["Loss by transition"] = lambda: chart(P.loss_split_figure(ft), key="loss_split")
    for tab, show in zip(st.tabs(list(views), key="tokens_view", bind="query-params"), views.values()):
        if tab.open is not False:  # None: a Streamlit without lazy tabs runs them all
            with tab:
                show()
    _token_set(root, data, ft)


guard(page)
