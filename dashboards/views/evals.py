"""Evaluations: the offline evaluation suite's results (runs/<run>/evals/, written by `superscope evals`
and, in its quick version, by `superscope run`) — the table SAE × metric, the Pareto plots of the L0
sweep, per-dataset sparse-probing bars, absorption per letter and the autointerp score distribution."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from superscope.analyses.report import eval_sections as E
from superscope.analyses.runs.evals import METRIC_TITLES, EvalsData, load_evals
from superscope.dashboards._ui import chart, guard, missing_note, run_and_data, table


def signature(root: Path) -> float:
    """Latest modification time of the result files (so new results are re-read)."""
    files = list((root / "evals").glob("*/*/*.json")) + list((root / "evals" / "sweep").glob("*/*/*.json"))
    return max((p.stat().st_mtime for p in files), default=0.0) + len(files) * 1e-9


@st.cache_data(show_spinner=False, max_entries=8)
def _evals(path: str, sig: float) -> EvalsData:
    return load_evals(path)


def page() -> None:
    root, data = run_and_data()
    st.title("Evaluations")
    missing_note(data)
    ev = _evals(str(root), signature(root))
    if ev.empty:
        st.info(f"No evaluation results in this run (evals/ is empty). Make them with `superscope evals {root}` "
                "(the full suite) or `superscope run` (its quick version).")
        return
    st.caption(E.INTRO)
    hooks = ev.hooks
    default = data.main_hook if data.main_hook in hooks else hooks[-1] if hooks else None
    if hooks:
        hook = st.selectbox("Hook", hooks, index=hooks.index(default), key="evals_hook") if len(hooks) > 1 else default
        st.subheader(f"SAE × metric at {hook}")
        for metric in ev.metrics:
            rows = ev.table_rows(hook, label=E.label, metrics=[metric])
            if any(len(r) > 1 for r in rows):
                st.markdown(f"**{METRIC_TITLES.get(metric, metric)}**")
                table(rows, key=f"evals_{metric}", file_name=f"evals_{metric}.csv")
    else:
        hook = None
    for line in ev.errors():
        st.warning(f"Failed: {line}")
    for line in ev.unreadable:
        st.warning(f"Unreadable: {line}")
    # only the open tab runs (its name is in the URL, ?evals_tab=…): each holds several figures
    tabs = st.tabs(["Pareto (L0 sweep)", "Sparse probing", "Absorption", "Autointerp"], key="evals_tab",
                   bind="query-params")
    sections = (_pareto, _probing, _absorption, _autointerp)
    for tab, section in zip(tabs, sections):
        if tab.open is not False:  # None: an older Streamlit without lazy tabs runs them all
            with tab:
                section(ev, hook, root)


def _pareto(ev: EvalsData, hook: str | None, root: Path) -> None:
    figs = E.pareto_figures(ev)
    if not figs:
        st.info(f"No L0 sweep yet: `superscope evals {root} --sweep` trains each architecture at "
                "k ∈ {8, 16, 32, 64, 128} and evaluates them (minutes per SAE on 2 cores).")
    for i, fig in enumerate(figs):
        chart(fig, key=f"pareto_{i}")


def _probing(ev: EvalsData, hook: str | None, root: Path) -> None:
    if hook is None:
        return
    ks = sorted({int(k.split("_")[2]) for r in ev.results(hook, "sparse_probing").values()
                 for k in (r.get("eval_result_metrics", {}).get("sae") or {}) if k.startswith("sae_top_")})
    fig = E.probing_figure(ev, hook, st.select_slider("latents per probe (k)", ks, value=ks[0], key="evals_k")
                           if len(ks) > 1 else (ks[0] if ks else 1))
    if fig is None:
        st.info("No sparse-probing results at this hook.")
    else:
        chart(fig, key="probing")


def _absorption(ev: EvalsData, hook: str | None, root: Path) -> None:
    if hook is None:
        return
    figs = [f for f in (E.absorption_figure(ev, hook), E.split_latents_figure(ev, hook)) if f is not None]
    if figs:
        st.warning(E.ABSORPTION_CAVEAT, icon=":material/info:")
    else:
        st.info("No absorption results at this hook.")
    for i, fig in enumerate(figs):
        chart(fig, key=f"absorption_{i}")


def _autointerp(ev: EvalsData, hook: str | None, root: Path) -> None:
    if hook is None:
        return
    fig = E.autointerp_figure(ev, hook)
    if fig is None:
        st.info("No autointerp results at this hook.")
    else:
        st.caption("Per latent: its token-set explanation (from the feature data) predicts its firing on held-out "
                   "tokens; balanced accuracy 0.5 is chance. The feature browser shows each latent's explanation.")
        chart(fig, key="autointerp")

guard(page)
