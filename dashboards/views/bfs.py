"""BFS thoughts: the BFS-superposition probe on Coconut's continuous thoughts (Zhu et al. 2025) — per
step score table, group histograms, the example graph with per-step node scores, edge attention.
From probes/bfs.json, and/or a Coconut checkpoint (the committed one under probes/bfs/checkpoints/ or
one in <run>/bfs/) probed live on a few fresh problems."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from superscope.analyses.report import probe_sections as P
from superscope.analyses.runs.formatting import fmt_num
from superscope.dashboards._ui import chart, guard, query_choice, run_and_data, table


def _show(r, key: str) -> None:
    ordered = r.ordered
    st.markdown("**Score gaps per step** (95 % CIs): frontier > reachable > not reachable is the evidence "
                "of BFS-superposition; optimal > frontier is partly built in, since with the tied LM head "
                "⟨t_i, E[v]⟩ is the logit the curriculum trains towards Optimal(i).")
    table(P.bfs_gap_rows(r), key=f"{key}_gaps")
    st.write("Ordered optimal > frontier > reachable > not reachable (CIs above 0) per step: "
             + ", ".join(f"step {s}: {'yes' if ok else 'no'}" for s, ok in ordered.items()))
    table([{"step": x.step, "group": x.group, "mean ⟨t_i, E[v]⟩": x.mean, "CI low": x.ci_low,
            "CI high": x.ci_high, "n": x.n} for x in r.scores], key=f"{key}_scores", height=220)
    chart(r.figure(), key=f"{key}_hist")
    if r.example:
        chart(r.graph_figure(), key=f"{key}_graph")
    if r.attention:
        chart(r.attention_figure(), key=f"{key}_attn")


def _checkpoints(root: Path) -> list[Path]:
    from superscope.probes.bfs.checkpoint import SHIPPED
    stems = sorted(SHIPPED.glob("*.json")) + sorted((root / "bfs").glob("*.json"))
    return [p.with_suffix("") for p in stems if p.with_suffix(".safetensors").exists()]


@st.cache_data(show_spinner="Probing fresh problems…", max_entries=8)
def _probe(stem: str, mtime: float, n_problems: int) -> dict:
    from superscope.probes.bfs.checkpoint import load_bfs_checkpoint
    from superscope.probes.bfs.generator import generate_problems
    from superscope.probes.bfs.probe import ProbeConfig, bfs_probe
    ck = load_bfs_checkpoint(stem)
    cfg = ProbeConfig(n_problems=n_problems, n_bootstrap=200)
    return bfs_probe(ck.model, ck.vocab, generate_problems(ck.graph, cfg.n_problems, cfg.seed), cfg).to_dict()


def _checkpoint_panel(root: Path) -> None:
    import json
    stems = _checkpoints(root)
    st.subheader("Checkpoints")
    if not stems:
        st.info("No BFS checkpoint found (probes/bfs/checkpoints/ or <run>/bfs/); train one with "
                "`superscope bfs train --run RUN`.")
        return
    stem = query_choice("Checkpoint", stems, "checkpoint", key="bfs_checkpoint",
                        format_func=lambda p: f"{p.name} ({p.parent})")
    meta = json.loads(stem.with_suffix(".json").read_text())
    test = (meta.get("metrics") or {}).get("test") or {}
    st.write(f"method **{meta.get('method')}**, test accuracy **{fmt_num(test.get('accuracy'))}** "
             f"(n={test.get('n', '?')}); by hops {test.get('accuracy_by_hops', {})}")
    log = meta.get("log") or []
    training = st.expander("Training curve", key="bfs_training", on_change="rerun") if log else None
    if training is not None and training.open is not False:  # drawn when opened (None: an older Streamlit)
        fig = go.Figure()
        fig.add_scatter(x=[r["epoch"] for r in log], y=[r["loss"] for r in log], name="train loss")
        fig.add_scatter(x=[r["epoch"] for r in log], y=[r["valid_acc"] for r in log], name="valid accuracy", yaxis="y2")
        fig.update_layout(title="Training", xaxis_title="epoch", yaxis2={"overlaying": "y", "side": "right"}, height=300)
        chart(fig, key="bfs_train", container=training)
    if meta.get("method") == "coconut":
        n = st.select_slider("fresh problems to probe", options=[20, 50, 100, 200], value=50)
        if st.button("Run the probe on this checkpoint"):
            st.session_state["bfs_live"] = (str(stem), n)
        live = st.session_state.get("bfs_live")
        if live and live[0] == str(stem):
            _show(P.bfs_result(_probe(live[0], stem.with_suffix(".safetensors").stat().st_mtime, live[1])), "live")


def page() -> None:
    root, data = run_and_data()
    st.title("BFS thoughts")
    d = data.probes.get("bfs")
    if d is not None:
        st.subheader("Probe result of this run (probes/bfs.json)")
        _show(P.bfs_result(d), "run")
    else:
        st.info("This run has no probes/bfs.json; write one with `superscope bfs probe --run RUN`, "
                "or probe a checkpoint below.")
    _checkpoint_panel(root)


guard(page)
