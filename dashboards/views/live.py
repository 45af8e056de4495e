"""Live prompt: type text, see the model's residual activations at a hook and the SAE's features per
token. The model is loaded once per server (st.cache_resource); FC / MC use their learned thresholds."""

from __future__ import annotations

import html

import plotly.graph_objects as go
import streamlit as st

from superscope.analyses.runs.formatting import fmt_num
from superscope.dashboards import _cache
from superscope.dashboards._queries import prompt_features
from superscope.dashboards._ui import EXAMPLE_CSS, chart, guard, query_choice, run_and_data, table
from superscope.saes.registry import arch_label

DEFAULT_TEXT = "The quick brown fox jumps over the lazy dog. def add(a, b):\n    return a + b"


def _strip(tokens: list[str], values: list[float], title: str) -> str:
    vmax = max(values) if values and max(values) > 0 else 1.0
    spans = "".join(f"<span class='tok' title='{v:.3g}' style='background: rgba(31,119,180,{0.6 * min(1, v / vmax):.2f})'>"
                    f"{html.escape(t.replace(chr(10), '⏎'))}</span>" for t, v in zip(tokens, values))
    return f"{EXAMPLE_CSS}<div class='ex'><b>{html.escape(title)}</b><br>{spans}</div>"


def page() -> None:
    root, data = run_and_data()
    st.title("Live prompt")
    if not data.hooks:
        st.warning("This run has no SAEs yet (saes/ is empty).")
        return
    c = st.columns(2)
    hook = query_choice("Hook", data.hooks, "hook", container=c[0], default=data.main_hook, key="live_hook")
    archs = [e.arch for e in data.at(hook)]
    arch = query_choice("SAE", archs, "sae", container=c[1], format_func=arch_label, key="live_sae")
    with st.form("prompt"):
        text = st.text_area("Prompt", value=st.session_state.get("prompt_text", DEFAULT_TEXT), height=100)
        go_ = st.form_submit_button("Encode")
    if go_:
        st.session_state["prompt_text"] = text
    if "prompt_text" not in st.session_state:
        st.info("Type a prompt and press Encode (the first run loads the model, ~30 s).")
        return
    model = _cache.model(data.info.get("config", {}).get("model"))
    sae = _cache.sae(root / "saes" / hook / arch)
    out = prompt_features(model, sae, hook, st.session_state["prompt_text"])
    toks = out["tokens"]
    st.html(_strip(toks, out["l0"], "active features per token (L0)"))
    st.html(_strip(toks, out["norms"], "residual-stream norm ‖x‖ at the hook"))
    if out["strongest"]:
        fig = go.Figure(go.Heatmap(z=out["strongest_acts"], x=[f"{i}:{t!r}" for i, t in enumerate(toks)],
                                   y=[f"f{f}" for f in out["strongest"]], colorscale="Oranges"))
        fig.update_layout(title="Strongest features of the prompt, per token", height=420,
                          xaxis_title="token", yaxis_title="feature")
        chart(fig, key="prompt_features")
    i = st.selectbox("Token", list(range(len(toks))), format_func=lambda i: f"{i}: {toks[i]!r}", key="live_token")
    rows = [{"feature": f, "activation": v} for f, v in zip(out["top_features"][i], out["top_values"][i]) if v > 0]
    folder = root / "features" / hook / arch
    if rows and (folder / "index.json").exists():
        fd = _cache.feature_data(folder)
        for r in rows:
            r["top logit"] = fd.token(int(fd.arrays["logit_top_ids_FL"][r["feature"], 0])) \
                if "logit_top_ids_FL" in fd.arrays else ""
            r["density"] = float(fd.arrays["density_F"][r["feature"]])
    st.markdown(f"**Features on token {i} {toks[i]!r}** — L0 {out['l0'][i]}, relative error {fmt_num(out['rel_error'][i])}")
    if rows:
        table(rows, key="token_features", file_name="live_token_features.csv")
    else:
        st.write("no feature fires on this token")


guard(page)
