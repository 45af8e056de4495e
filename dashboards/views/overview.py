"""Overview: what ran (run.json) and the headline TopK / FC / MC table at the main hook."""

from __future__ import annotations

import streamlit as st

from superscope.analyses.report import sae_sections as S
from superscope.dashboards._ui import df, guard, missing_note, run_and_data


def page() -> None:
    root, data = run_and_data()
    info = data.info
    st.title(f"Run {data.name}")
    st.caption(f"{root} · created {info.get('created', '?')}")
    c = st.columns(4)
    c[0].metric("model", str(info.get("model", "?")).replace("embedded:", ""))
    c[1].metric("SAEs", len(data.saes))
    c[2].metric("hooks", len(data.hooks))
    c[3].metric("probes", len(data.probes))
    st.markdown(f"**corpus** {info.get('corpus', '?')} · **main hook** `{data.main_hook}` · "
                f"**architectures** {', '.join(info.get('archs') or sorted({e.arch for e in data.saes}))}")
    missing_note(data)
    steps = info.get("steps") or {}
    if steps:
        st.subheader("Steps")
        st.dataframe(df([{"step": k, **{kk: vv for kk, vv in v.items() if kk != "done"}} for k, v in steps.items()]),
                     hide_index=True)
    else:
        st.info("No step has finished yet (run.json lists no steps).")
    if data.main_hook is None:
        st.warning("This run has no SAEs yet: the headline table appears once the train and evaluate steps ran.")
        return
    st.subheader(f"Headline: TopK vs Feature Choice vs Mutual Choice at {data.main_hook}")
    st.dataframe(df(S.comparison_rows(data, data.main_hook)), hide_index=True)
    st.plotly_chart(S.metrics_figure(data, data.main_hook))
    with st.expander("Configuration and versions"):
        st.json({"config": info.get("config", {}), "versions": info.get("versions", {})}, expanded=False)
    report = root / "report.html"
    if report.exists():
        st.caption(f"Static report: {report}")


guard(page)
