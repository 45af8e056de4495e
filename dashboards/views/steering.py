"""Steering: pick a latent (search by explanation or top token), set α or a clamp value, generate, and
compare the unsteered and steered continuations, the per-token KL strip, the edit's cost on held-out
contexts and its dose-response (``superscope.interventions``). Saved results of `superscope steer`
(runs/<run>/steering/*.json) open without the model. The feature browser links here with
``?hook=…&arch=…&latent=…``."""

from __future__ import annotations

import html
import math

import pandas as pd
import streamlit as st

from superscope.dashboards import _cache
from superscope.dashboards._ui import EXAMPLE_CSS, chart, guard, query_choice, run_and_data, table
from superscope.interventions import OPS
from superscope.saes.registry import arch_label

DEFAULT_PROMPT = "The history of the language began"
OP_HELP = {"add": "add α·d_f to the residual (α in residual units)", "scale": "multiply the latent's code by α",
           "ablate": "set the latent's code to 0", "clamp": "move the residual until the SAE re-reads z_f = value",
           "delta_clamp": "set z_f = value in the reconstruction, keeping the SAE error"}


def latent_table(root, hook: str, arch: str) -> pd.DataFrame | None:
    """Searchable latents: explanation (autointerp) when the run has it, top token / top logit (feature data)."""
    from superscope.analyses.evals.autointerp import read_autointerp

    cols: dict[str, list] = {}
    folder = root / "features" / hook / arch
    if (folder / "index.json").is_file():
        summary = _cache.feature_data(folder).summary
        cols = {k: summary[k] for k in ("feature", "density", "top_token", "top_logit") if k in summary}
    try:
        ai = read_autointerp(root, hook, arch)
    except ValueError as err:
        st.warning(str(err))
        ai = None
    if ai is not None and (not cols or len(ai["feature"]) == len(cols["feature"])):
        cols = {**cols, "feature": ai["feature"], "explanation": ai["explanation"]}
    return pd.DataFrame(cols) if cols else None


def _search(t: pd.DataFrame, text: str) -> pd.DataFrame:
    if not text:
        return t
    hit = False
    for c in ("explanation", "top_token", "top_logit"):
        if c in t.columns:
            hit = hit | t[c].astype(str).str.contains(text, case=False, regex=False)
    return t[hit]


def kl_strip(tokens, kls) -> str:
    vmax = max([v for v in kls if math.isfinite(v)] or [0.0]) or 1.0
    spans = "".join(f"<span class='tok' title='KL {v:.3g}' style='background: rgba(214,39,40,{0.7 * min(1, v / vmax):.2f})'>"
                    f"{html.escape(t.replace(chr(10), '⏎'))}</span>" for t, v in zip(tokens, kls))
    return f"{EXAMPLE_CSS}<div class='ex'><b>steered continuation, background ∝ KL(clean ‖ steered)</b><br>{spans}</div>"


def continuation_html(title: str, text: str) -> str:
    """A generated continuation as a block of pre-wrapped monospace text under a bold title."""
    return (f"<div><b>{html.escape(title)}</b><pre style='white-space: pre-wrap; background: #f6f6f9; padding: 10px 12px; "
            f"border-radius: 6px; font-size: 13px; margin-top: 6px'>{html.escape(text)}</pre></div>")


def show_result(data: dict, key: str) -> None:
    """One steering result (the JSON of ``SteeringResult.to_dict``)."""
    from superscope.interventions.dose import DoseResponse

    g, c = data["generation"], data["cost"]
    edits = ", ".join(f"f{e['latent']} {e['op']} {e['value']:g} @ {e['hook']}" for e in data["edits"])
    st.markdown(f"**{html.escape(edits)}** — {'greedy' if g['greedy'] else 'sampled, seed ' + str(g['seed'])}")
    st.markdown("**Prompt** " + f"`{g['prompt']}`")
    left, right = st.columns(2)
    left.html(continuation_html("Unsteered", g["clean"]))
    right.html(continuation_html("Steered", g["steered"]))
    st.html(kl_strip(g["steered_tokens"], g["kl_per_token"]))
    m = st.columns(4)
    m[0].metric("KL(clean ‖ steered)", f"{c['kl']:.4g} nats", help=f"mean over {c['n_tokens']} held-out tokens")
    m[1].metric("CE-loss change", f"{c['ce_delta']:+.4g}", help=f"CE {c['ce_clean']:.4g} → {c['ce_steered']:.4g}")
    m[2].metric("mean KL along the continuation", f"{g['mean_kl']:.4g} nats")
    m[3].metric("seconds", f"{data.get('seconds', 0):.1f}")
    table([{"latent": s["latent"], "hook": s["hook"], "mean z clean": s["clean"], "arriving": s["arriving"],
            "after edit": s["after"], "fires clean": s["fired_clean"], "fires after": s["fired_after"]}
           for s in c["latents"]], key=f"{key}_shift", download=False)
    dose = DoseResponse(**{k: tuple(v) if isinstance(v, list) else v for k, v in data["dose"].items()})
    chart(dose.figure(), key=f"{key}_dose")


def _parse_values(text: str) -> tuple[float, ...]:
    vals = tuple(float(v) for v in text.replace(",", " ").split())
    if any(not math.isfinite(v) for v in vals):
        raise ValueError(f"sweep values must be finite numbers, got {text!r}")
    return vals


def _form(root, data, hook: str, arch: str, n_latents: int | None) -> None:
    from superscope.interventions.run_folder import SteerConfig, steer_run, write_result

    wanted = st.query_params.get("latent")
    if wanted is not None and wanted.isdigit() and st.session_state.get("_qp_seen_latent") != wanted:
        st.session_state["steer_latent"] = int(wanted)
    with st.form("steer"):
        c = st.columns([1, 1, 1])
        latent = c[0].number_input("Latent", min_value=0, max_value=max(0, (n_latents or 10**7) - 1), step=1,
                                   key="steer_latent")
        op = c[1].selectbox("Edit", OPS, format_func=lambda o: f"{o} — {OP_HELP[o]}", key="steer_op")
        alpha = c[2].text_input("α or clamp value", value="8", key="steer_alpha")
        prompt = st.text_area("Prompt", value=DEFAULT_PROMPT, height=80, key="steer_prompt")
        d = st.columns(4)
        new_tokens = d[0].number_input("tokens to generate", 1, 128, 32, key="steer_tokens")
        greedy = d[1].checkbox("greedy", value=True, key="steer_greedy")
        seed = d[2].number_input("seed (sampling)", 0, 10**6, 0, key="steer_seed")
        contexts = d[3].number_input("held-out contexts", 1, 256, 16, key="steer_contexts",
                                     help="for the KL / CE cost and the dose-response (64 in the benchmark)")
        e = st.columns(2)
        sweep = e[0].text_input("dose-response values (blank: 8 from 0 to 2α)", value="", key="steer_sweep")
        target = e[1].text_input("target token (blank: the latent's most promoted token)", value="", key="steer_target")
        go_ = st.form_submit_button("Steer", type="primary")
    st.session_state["_qp_seen_latent"] = str(int(latent))
    st.query_params["latent"] = str(int(latent))
    if not go_:
        return
    try:
        config = SteerConfig(hook=hook, arch=arch, latent=(int(latent),), op=op, alpha=float(alpha.strip() or "nan"),
                             prompt=prompt, max_new_tokens=int(new_tokens), greedy=bool(greedy), seed=int(seed),
                             contexts=int(contexts), sweep=_parse_values(sweep), target=target or None)
        model = _cache.model(data.info.get("config", {}).get("model"))
        with st.spinner("Generating and measuring (two continuations, the cost, the sweep)…"):
            result = steer_run(root, config, model=model)[0]
    except (ValueError, FileNotFoundError, OSError, TypeError) as err:
        st.session_state.pop("steer_result", None)
        st.error(str(err).splitlines()[0] if str(err) else type(err).__name__)
        return
    st.session_state["steer_result"] = result.to_dict()
    if st.session_state.get("steer_save"):
        paths = write_result(root, result)
        st.success(f"saved {paths[0].name} and {paths[1].name} in {paths[0].parent}")


def page() -> None:
    root, data = run_and_data()
    st.title("Steering")
    if not data.hooks:
        st.warning("This run has no SAEs yet (saes/ is empty).")
        return
    c = st.columns(2)
    hook = query_choice("Hook", data.hooks, "hook", container=c[0], default=data.main_hook, key="steer_hook")
    arch = query_choice("SAE", [e.arch for e in data.at(hook)], "arch", container=c[1], format_func=arch_label,
                        key="steer_arch")
    if not (root / "heldout" / hook / "manifest.json").is_file():
        st.warning(f"No held-out contexts at heldout/{hook}/: generation works, but the edit's KL and CE cost "
                   "on held-out text and the dose-response need them (the harvest step of `superscope run`).")
    latents = latent_table(root, hook, arch)
    if latents is not None:
        search = st.text_input("find latents (explanation or top token)", key="steer_search",
                               placeholder="e.g. ' def' or 'python'")
        found = _search(latents, search)
        st.write(f"{len(found)} of {len(latents)} latents match")
        table(found.head(200), key="steer_latents", height=220, download=False)
    else:
        st.info("No feature data or explanations for this SAE: pick a latent by index.")
    st.checkbox("save each result to the run folder (steering/<name>.json + .html)", key="steer_save")
    _form(root, data, hook, arch, None if latents is None else len(latents))
    if st.session_state.get("steer_result"):
        show_result(st.session_state["steer_result"], "live")
    from superscope.interventions.run_folder import read_results

    saved = read_results(root)
    if saved:
        st.subheader("Saved results")
        names = [d["config"]["name"] for d in saved]
        pick = st.selectbox("result", names, key="steer_saved")
        show_result(saved[names.index(pick)], "saved")


guard(page)
