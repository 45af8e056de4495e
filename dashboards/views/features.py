"""Feature browser: filter an SAE's features by firing density, logit effect and token; inspect one
feature's top examples (tokens highlighted by activation), quantile bands, histogram, logits and
nearest neighbours. Reads runs/<run>/features/<hook>/<arch>/ (written by the pipeline's features step).
The URL names the view (``?run=…&hook=…&sae=…&feature=…``): opening it shows the same feature."""

from __future__ import annotations

import math

import streamlit as st

from superscope.analyses.evals.autointerp import EVALS_COMMAND, autointerp_path, read_autointerp
from superscope.analyses.features.card import example_html
from superscope.analyses.runs.formatting import fmt_count, fmt_num, fmt_sci, visible_token
from superscope.dashboards import _cache
from superscope.dashboards._ui import EXAMPLE_CSS, chart, copy_link, guard, query_choice, run_and_data
from superscope.dashboards._ui import table as show_table
from superscope.saes.registry import arch_label


MATCH_LABELS = {"either": "top logit or top token", "top_logit": "top logit", "top_token": "top token",
                "explanation": "explanation"}
SORT_LABELS = {"density": "firing density", "max_act": "max activation", "mean_act": "mean activation",
               "feature": "feature index", "detection_bacc": "detection balanced accuracy",
               "detection_f1": "detection F1"}


def _filtered(table, density_range, search: str, where: str, hide_dead: bool, sort: str):
    t = table
    if hide_dead:
        t = t[t["count"] > 0]
    lo, hi = density_range
    dens = t["density"].clip(lower=1e-12).map(math.log10)
    t = t[(dens >= lo) & (dens <= hi)]
    if search:
        cols = [c for c in (("top_logit", "top_token") if where == "either" else (where,)) if c in t.columns]
        hit = False
        for c in cols:
            hit = hit | t[c].str.contains(search, case=False, regex=False)
        t = t[hit] if cols else t.iloc[0:0]
    return t.sort_values(sort, ascending=(sort == "feature"))


@st.cache_data(show_spinner=False, max_entries=8)
def _autointerp_cached(root: str, hook: str, arch: str, mtime: float):
    return read_autointerp(root, hook, arch)


def _autointerp(root, hook: str, arch: str, n_features: int):
    """The SAE's autointerp columns (explanation, detection scores), or None when the run has none."""
    path = autointerp_path(root, hook, arch)
    try:
        ai = _autointerp_cached(str(root), hook, arch, path.stat().st_mtime if path.is_file() else 0.0)
    except ValueError as err:
        st.warning(str(err))
        return None
    if ai is not None and len(ai["feature"]) != n_features:
        st.warning(f"{path} has {len(ai['feature'])} latents, this SAE {n_features}: rerun `{EVALS_COMMAND}`.")
        return None
    return ai


def _num(v) -> str:
    return "—" if v is None else f"{v:.3f}"


def _explained(ai, f: int) -> None:
    """Input-centric explanation, its detection score on held-out tokens, and the LLM's line if any."""
    bacc, f1 = ai["detection_bacc"][f], ai["detection_f1"][f]
    score = "not scored" if math.isnan(bacc) else f"balanced accuracy {bacc:.3f} · F1 {f1:.3f}"
    st.markdown(f"**Fires on** {ai['explanation'][f] or '—'} — detection on held-out tokens: {score}")
    if ai["llm_explanation"][f]:
        st.markdown(f"**LLM explanation** (embedded SmolLM2-135M, greedy; a 135M model is often generic or wrong, "
                    f"and this line is not scored): {ai['llm_explanation'][f]}")


def _goto(feature: int) -> None:
    st.session_state["feature_input"] = int(feature)


def _card(fd, f: int, ai=None, hook: str = "", arch: str = "") -> None:
    card = fd.card(f)
    st.subheader(f"Feature {f}")
    if ai is not None:
        _explained(ai, f)
    c = st.columns(4)
    c[0].metric("fires on", f"{fmt_count(card.count)} tokens")
    c[1].metric("density", fmt_sci(card.density))
    c[2].metric("mean act", fmt_num(card.mean_act))
    c[3].metric("max act", fmt_num(card.max_act))
    copy_link("features", f"Link to feature {f}", hook=hook, sae=arch, feature=f)
    st.page_link("views/steering.py", label=f"Steer feature {f}", icon=":material/tune:",
                 query_params={"run": st.query_params.get("run", ""), "hook": hook, "arch": arch, "latent": str(f)})
    if card.dead:
        st.warning(f"Feature {f} never fired on the {fd.index['n_tokens']} held-out tokens (dead).")
    left, right = st.columns([3, 2])
    with left:
        st.markdown("**Top activations** (token background ∝ activation; boxed = the firing token)")
        vmax = card.max_act or 1.0
        st.html(EXAMPLE_CSS + "".join(example_html(ex, vmax) for ex in card.top))
        st.markdown("**Quantile bands** (a uniform sample of firings, cut into equal-count bands)")
        parts = []
        for j, (band, (hi, lo)) in enumerate(zip(card.bands, card.band_edges)):
            if band:
                parts.append(f"<div class='band'><b>band {j + 1}</b> ({fmt_num(lo)} – {fmt_num(hi)})</div>"
                             + "".join(example_html(ex, vmax) for ex in band))
        st.html(EXAMPLE_CSS + ("".join(parts) or "<i>no firings</i>"))
    with right:
        chart(card.figure(), key=f"feature_{f}")
        if card.top_logits:
            st.markdown("Output-centric (VocabProj: g ⊙ W_dec[f] / s through W_U)")
            st.markdown("**Promotes** " + " ".join(f"`{t!r}`" for t, _ in card.top_logits))
            st.markdown("**Suppresses** " + " ".join(f"`{t!r}`" for t, _ in card.bottom_logits))
        if card.neighbours:
            st.markdown("**Nearest features** (decoder cosine)")
            cols = st.columns(3)
            for i, (n, cos) in enumerate(card.neighbours):
                cols[i % 3].button(f"{n} ({cos:.2f})", key=f"nbr_{f}_{n}", on_click=_goto, args=(n,),
                                   width="stretch")


def page() -> None:
    root, data = run_and_data()
    st.title("Feature browser")
    if not data.feature_folders:
        st.warning("No feature data in this run (features/ is empty). The pipeline's `features` step writes it; "
                   "or run `write_feature_data(run, model)` from superscope.analyses.features.")
        return
    hooks = list(dict.fromkeys(h for h, _, _ in data.feature_folders))
    c = st.columns(2)
    hook = query_choice("Hook", hooks, "hook", container=c[0], default=data.main_hook, key="features_hook")
    archs = [a for h, a, _ in data.feature_folders if h == hook]
    arch = query_choice("SAE", archs, "sae", container=c[1], format_func=arch_label, key="features_sae")
    folder = next(p for h, a, p in data.feature_folders if h == hook and a == arch)
    fd = _cache.feature_data(folder)
    table = _cache.feature_table(folder)
    ai = _autointerp(root, hook, arch, fd.n_features)
    if ai is not None:
        table = table.assign(**{k: ai[k] for k in ("detection_bacc", "detection_f1", "explanation")})
    st.caption(f"{fmt_count(fd.n_features)} features · {fmt_count(fd.index['n_tokens'])} held-out tokens · "
               f"{fd.index.get('inference_mode')} mode")
    with st.expander("Filter", expanded=True):
        f1, f2, f3 = st.columns([2, 2, 1])
        density_range = f1.slider("log10 firing density", -8.0, 0.0, (-8.0, 0.0), 0.25)
        search = f2.text_input("token contains", placeholder="e.g. ' the' or 'def'")
        where = f3.radio("match in", ("either", "top_logit", "top_token") + (("explanation",) if ai else ()),
                         horizontal=False, format_func=MATCH_LABELS.get)
        s1, s2, s3 = st.columns(3)
        sort = s1.selectbox("sort by", ("density", "max_act", "mean_act", "feature")
                            + (("detection_bacc", "detection_f1") if ai else ()), format_func=SORT_LABELS.get)
        hide_dead = s2.checkbox("hide dead features", value=True)
        min_score = s3.slider("min detection balanced accuracy", 0.0, 1.0, 0.0, 0.05) if ai else 0.0
    if ai is not None:
        sm = ai["summary"]
        st.caption(f"Token-set explanations scored by detection on held-out tokens they were not built from: "
                   f"balanced accuracy mean {_num(sm['mean_balanced_accuracy'])}, "
                   f"median {_num(sm['median_balanced_accuracy'])} "
                   f"over {sm['n_scored']} of {sm['n_latents']} latents ({sm['n_scoring_tokens']} tokens).")
    else:
        st.caption(f"No explanations or detection scores for this SAE yet: `{EVALS_COMMAND.replace('<run>', str(root))}` "
                   "writes them (evals/<hook>/<arch>/autointerp.json).")
    shown = _filtered(table, density_range, search, where, hide_dead, sort)
    if min_score > 0:
        shown = shown[shown["detection_bacc"] >= min_score]
    st.write(f"{fmt_count(len(shown))} of {fmt_count(len(table))} features match"
             + (" (the first 500 shown; the CSV holds all)" if len(shown) > 500 else ""))
    page_rows = shown.head(500)
    page_rows = page_rows.assign(**{c: page_rows[c].map(visible_token) for c in ("top_logit", "top_token")
                                    if c in page_rows.columns})  # a newline token shows as ⏎, not a blank cell
    show_table(page_rows, key="feature_list", height=260, export=shown,  # the CSV: the current filter
               file_name=f"{data.name}_{arch}_features_filtered.csv")
    wanted = st.query_params.get("feature")
    if wanted is not None and wanted.isdigit() and st.session_state.get("_qp_seen_feature") != wanted:
        st.session_state["feature_input"] = int(wanted)  # a link names the feature
    if not 0 <= int(st.session_state.get("feature_input", -1)) < fd.n_features:
        st.session_state["feature_input"] = int(shown.index[0]) if len(shown) else 0
    f = int(st.number_input("Feature", min_value=0, max_value=fd.n_features - 1, step=1, key="feature_input"))
    st.query_params["feature"] = str(f)  # the URL reopens this feature
    st.session_state["_qp_seen_feature"] = str(f)
    _card(fd, f, ai, hook, arch)


guard(page)
