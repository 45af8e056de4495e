"""The sections of report.html. Each ``add_*`` fills one section from ``RunData``; when its input is
missing it writes a note saying what is missing and how to make it (``report.write_report`` also
turns any error inside a section into such a note)."""

from __future__ import annotations

import html
from urllib.parse import urlencode

from superscope.analyses.report import probe_sections as P
from superscope.analyses.report import sae_sections as S
from superscope.analyses.report.page import Page, caption, note, table
from superscope.analyses.runs.data import RunData, optional
from superscope.analyses.runs.formatting import fmt_count, fmt_seconds
from superscope.analyses.runs.timeline import steps as run_steps
from superscope.saes.registry import arch_label


def add_summary(page: Page, data: RunData, cfg) -> None:
    s = page.section("summary", "Run summary")
    info = data.info
    rows = [{"field": k, "value": v if not isinstance(v, (list, dict)) else ", ".join(map(str, v))}
            for k, v in (("name", data.name), ("created", info.get("created")), ("model", info.get("model")),
                         ("corpus", info.get("corpus")), ("main hook", info.get("main_hook")),
                         ("hooks", info.get("hooks")), ("architectures", info.get("archs")), ("seed", info.get("seed")))]
    s.parts.append(table(rows))
    steps = run_steps(info)
    if steps:
        s.parts += ["<h3>Steps</h3>", steps_table(steps)]
    config = info.get("config") or {}
    if config:
        s.parts += ["<h3>Configuration</h3>", table([{"option": k, "value": str(v)} for k, v in config.items()])]
    versions = info.get("versions") or {}
    if versions:
        s.parts += ["<h3>Versions</h3>", table([versions])]
    if data.missing():
        s.parts.append(note("Missing or unreadable: " + "; ".join(data.missing())))


def steps_table(steps) -> str:
    """The run's steps as a compact timeline: step, duration, what it made (linked to its section)."""
    rows = []
    for st in steps:
        made = html.escape(st.made)
        if st.section:
            made += f" <a href='#{st.section}'>→ {html.escape(st.section.replace('_', ' '))}</a>"
        rows.append(f"<tr><td>{html.escape(st.step)}</td><td class=num>{fmt_seconds(st.seconds)}</td>"
                    f"<td style='text-align:left'>{made}</td></tr>")
    total = sum(st.seconds or 0 for st in steps)
    return ("<table class='t steps'><thead><tr><th>Step</th><th title='wall-clock time of the step'>Duration</th>"
            "<th title='what the step wrote into the run folder'>What it made</th></tr></thead><tbody>"
            + "".join(rows) + f"</tbody></table><p class='caption'>{len(steps)} steps, {fmt_seconds(total)} in all.</p>")


def feature_url(base: str, run: str, hook: str, arch: str, feature: int) -> str:
    """The dashboard's URL of one feature (the Feature browser reopens it from these query parameters)."""
    query = urlencode({"run": run, "hook": hook, "sae": arch, "feature": int(feature)})
    return f"{base.rstrip('/')}/features?{query}"


def add_saes(page: Page, data: RunData, cfg) -> None:
    s = page.section("saes", "TopK vs Feature Choice vs Mutual Choice")
    hook = data.main_hook
    if hook is None:
        s.parts.append(note("No SAEs in this run (saes/ is empty): run the train step of `superscope run`."))
        return
    s.parts.append(caption("Same width and the same mean budget k. TopK: k features per token; Feature Choice: "
                           "each feature picks its tokens; Mutual Choice: the batch's k·B largest pairs (Ayonrinde "
                           "2024). FVU and L0 on held-out tokens; CE-loss recovered and KL with the SAE spliced "
                           "into the model. FC / MC: '(threshold)' = with their learned inference thresholds."))
    s.parts.append(f"<h3>At {html.escape(hook)}</h3>" + table(S.comparison_rows(data, hook)))
    for fig in (S.metrics_figure(data, hook), S.l0_figure(data, hook), S.density_figure(data, hook),
                S.training_figure(data, hook)):
        s.parts.append(page.figure(fig))
    others = [h for h in data.hooks if h != hook]
    if others:
        s.parts.append("<h3>Layer sweep</h3>" + page.figure(S.sweep_figure(data)))
        for h in others:
            s.parts.append(f"<h3>{html.escape(h)}</h3>" + table(S.comparison_rows(data, h)))


def add_difficulty(page: Page, data: RunData, cfg) -> None:
    from superscope.analyses.report.difficulty import cached_l0_vs_difficulty

    s = page.section("difficulty", "Adaptive allocation: per-token L0 vs difficulty")
    hook = data.main_hook
    if hook is None or not (data.root / "heldout" / hook / "manifest.json").exists():
        s.parts.append(note(f"Needs SAEs and held-out activations at the main hook (heldout/{hook}/); "
                            "they are missing."))
        return
    res = cached_l0_vs_difficulty(data.root, hook, max_tokens=cfg.difficulty_tokens)
    s.parts.append(caption("Difficulty of a token = its reconstruction error under the TopK SAE (share of FVU). "
                           "TopK spends k features on every token; FC / MC can spend more on hard tokens. A rising "
                           "curve and Spearman ρ > 0 show adaptive allocation."))
    s.parts.append(page.figure(res.figure()))
    s.parts.append(table([{"SAE": k, "Spearman ρ(L0, difficulty)": res.spearman[k], "FVU": res.fvu[k]}
                          for k in res.l0_by_bin]))


def add_superposition(page: Page, data: RunData, cfg) -> None:
    s = page.section("superposition", "Superposition entropy per layer and architecture")
    d = data.probes.get("superposition_entropy")
    if d is None:
        s.parts.append(note(f"Not available: {data.probe_errors.get('superposition_entropy')}. "
                            "Run the probes step of `superscope run`."))
        return
    s.parts.append(caption("F_eff = exp(H) of the distribution of total feature activation mass; ψ = F_eff / N "
                           "counts effective features per neuron (ψ > 1: superposition). 95 % bootstrap CIs over "
                           "token blocks."))
    s.parts += [page.figure(P.psi_figure(d)), table(P.entropy_rows(d)), page.figure(P.convergence_figure(d))]


def add_function_tokens(page: Page, data: RunData, cfg) -> None:
    s = page.section("function_tokens", "Function tokens")
    ft = data.probes.get("function_tokens")
    if ft is None:
        s.parts.append(note(f"Not available: {data.probe_errors.get('function_tokens')}. "
                            "Run the probes step of `superscope run`."))
        return
    s.parts.append(caption(f"Token–feature graph of the {arch_label(ft.get('architecture') or '')} SAEs on held-out "
                           "tokens (Zhang, Lin, Li 2025): a few frequent function tokens activate most features."))
    rows = P.coverage_rows(ft)
    s.parts += ["<h3>Coverage of active features by the top-k tokens (%)</h3>",
                table(rows) if rows else caption("(no coverage table in the result: fewer than 10 tokens were ranked)"),
                page.figure(P.coverage_figure(ft)), page.figure(P.degree_figure(ft)),
                "<h3>Feature shares by token type</h3>", table(P.shares_rows(ft))]
    if ft.get("loss_split"):
        s.parts.append(page.figure(P.loss_split_figure(ft)))


def add_bfs(page: Page, data: RunData, cfg) -> None:
    s = page.section("bfs", "BFS superposition in continuous thoughts")
    d = data.probes.get("bfs")
    if d is None:
        s.parts.append(note("Not available: probes/bfs.json not written. Run "
                            f"`superscope bfs probe --run {data.root}` to add it."))
        return
    r = P.bfs_result(d)
    s.parts.append(caption("Zhu et al. 2025: the i-th continuous thought t_i scored against every node's embedding; "
                           "t_i superposes the BFS frontier if frontier > reachable > not reachable. These gaps are "
                           "the evidence: the training loss never ranks one non-optimal node above another."))
    s.parts.append(table(P.bfs_gap_rows(r)))
    s.parts.append(caption("Optimal > frontier is partly built in: with the tied LM head the score ⟨t_i, E[v]⟩ is v's "
                        "logit at the column that outputs t_i, and the Coconut curriculum trains that logit towards "
                        "Optimal(i) (the next node on a shortest path). See probes/bfs/README.md."))
    s.parts.append(f"<pre>{html.escape(r.table())}</pre>")
    s.parts.append(page.figure(r.figure()))
    if r.example:
        s.parts.append(page.figure(r.graph_figure()))
    if r.attention:
        s.parts.append(page.figure(r.attention_figure()))


def pick_features(fd, n: int) -> list[int]:
    """``n`` live, non-dense features spread over the density range (deterministic)."""
    import torch
    density, count = fd.arrays["density_F"], fd.arrays["count_F"]
    ok = ((count >= 3) & (density < 0.1)).nonzero().squeeze(1)
    if ok.numel() == 0:
        ok = (count > 0).nonzero().squeeze(1)
    if ok.numel() == 0:
        return []
    order = ok[torch.argsort(density[ok], descending=True)]
    picks = torch.linspace(0, order.numel() - 1, min(n, order.numel())).round().long()
    return order[picks].tolist()


def add_feature_cards(page: Page, data: RunData, cfg) -> None:
    from superscope.analyses.features.storage import FeatureData

    s = page.section("features", "Feature cards")
    hook = data.main_hook
    folders = [(h, a, p) for h, a, p in data.feature_folders if h == hook] or data.feature_folders[:3]
    if not folders:
        s.parts.append(note("No feature data (features/ is empty): run `superscope run` with feature data on."))
        return
    per = max(1, cfg.n_feature_cards // len(folders))
    base = getattr(cfg, "dashboard_url", "http://localhost:8501")
    s.parts.append(caption(f"Each card's title opens the feature in the dashboard at {base} (start it with "
                           f"`superscope dashboard`; another address: `superscope report --dashboard-url URL`)."))
    for h, a, p in folders:
        fd = FeatureData(p)
        s.parts.append(f"<h3>{html.escape(h)} / {arch_label(a)} "
                       f"({fmt_count(fd.index['n_tokens'])} held-out tokens, {fd.index.get('inference_mode')} mode)</h3>")
        for f in pick_features(fd, per):
            card = fd.card(f)
            logits = ", ".join(repr(t) for t, _ in card.top_logits[:6])
            url = html.escape(feature_url(base, data.name, h, a, f), quote=True)
            s.parts.append(f"<div class='card' id='feature-{html.escape(a)}-{f}'><a class='feature-link' href='{url}' "
                           f"target='_blank' rel='noopener'><b>feature {f}</b> ↗ dashboard</a>"
                           + (f" — promotes {html.escape(logits)}" if logits else "")
                           + card.html(n_top=6) + page.figure(card.figure()) + "</div>")
    if optional(data.info, "steps", "features") is None:
        s.parts.append(note("The features step is not marked done in run.json; these cards may be stale."))
