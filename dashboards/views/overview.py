"""Overview: what ran (run.json) as a compact timeline of its steps, and the headline TopK / FC / MC
table at the main hook."""

from __future__ import annotations

import streamlit as st

from superscope.analyses.report import sae_sections as S
from superscope.analyses.runs.data import arch_key
from superscope.analyses.runs.formatting import fmt_seconds
from superscope.analyses.runs.timeline import steps as run_steps
from superscope.dashboards._ui import chart, guard, missing_note, run_and_data, table
from superscope.saes.registry import arch_label

PAGE_FILES = {"compare": "views/compare.py", "features": "views/features.py", "superposition": "views/superposition.py",
              "function_tokens": "views/function_tokens.py", "bfs": "views/bfs.py", "live": "views/live.py"}
PAGE_TITLES = {"compare": "SAE comparison", "features": "Feature browser", "superposition": "Superposition",
               "function_tokens": "Function tokens", "bfs": "BFS thoughts", "live": "Live prompt"}


def _timeline(info: dict, run: str) -> None:
    """One line per step: name, duration, what it made, a link to the page that shows it."""
    steps = run_steps(info)
    total = sum(s.seconds or 0 for s in steps)
    st.subheader("Steps")
    st.caption(f"{len(steps)} steps, {fmt_seconds(total)} in all")
    with st.container(border=True):
        for s in steps:
            c = st.columns([1.1, 1.1, 6, 1.6], vertical_alignment="center")
            c[0].markdown(f"**{s.step}**")
            c[1].markdown(fmt_seconds(s.seconds))
            c[2].markdown(s.made)
            if s.page in PAGE_FILES:
                c[3].page_link(PAGE_FILES[s.page], label=PAGE_TITLES[s.page], icon=":material/arrow_forward:",
                               query_params={"run": run, **dict(s.params)})
            elif s.step == "report":
                c[3].markdown("`report.html`")


def page() -> None:
    root, data = run_and_data()
    info = data.info
    st.title(f"Run {data.name}")
    st.caption(f"{root} · created {info.get('created', '?')}")
    c = st.columns([3, 1, 1, 1])
    c[0].metric("model", str(info.get("model", "?")).replace("embedded:", ""))
    c[1].metric("SAEs", len(data.saes))
    c[2].metric("hooks", len(data.hooks))
    c[3].metric("probes", len(data.probes))
    archs = sorted({*info.get("archs", []), *(e.arch for e in data.saes)}, key=arch_key)  # configured + extra ones
    st.markdown(f"**corpus** {info.get('corpus', '?')} · **main hook** `{data.main_hook}` · "
                f"**architectures** {', '.join(arch_label(a) for a in archs)}")
    missing_note(data)
    if info.get("steps"):
        _timeline(info, data.name)
    else:
        st.info("No step has finished yet (run.json lists no steps).")
    if data.main_hook is None:
        st.warning("This run has no SAEs yet: the headline table appears once the train and evaluate steps ran.")
        return
    labels = [arch_label(e.arch) for e in data.at(data.main_hook)]
    st.subheader(f"Headline: {', '.join(labels[:-1])} and {labels[-1]} at {data.main_hook}" if len(labels) > 1
                 else f"Headline at {data.main_hook}")
    table(S.comparison_rows(data, data.main_hook), key="headline", file_name=f"{data.name}_headline.csv")
    chart(S.metrics_figure(data, data.main_hook), key="headline_metrics")
    with st.expander("Configuration and versions"):
        st.json({"config": info.get("config", {}), "versions": info.get("versions", {})}, expanded=False)
    report = root / "report.html"
    if report.exists():
        st.caption(f"Static report: {report}")


guard(page)
