"""The report's Steering section: every result `superscope steer` wrote into runs/<run>/steering/ — the
edit, the unsteered and steered continuations, KL and CE change on held-out tokens, the latent's own
shift and the dose-response figure (``superscope.interventions``). Without results, a note naming the
command that makes them."""

from __future__ import annotations

import html

from superscope.analyses.report.page import Page, caption, hint, table
from superscope.analyses.runs.data import RunData
from superscope.interventions.dose import DoseResponse
from superscope.interventions.run_folder import read_results


def add_steering(page: Page, data: RunData, cfg) -> None:
    s = page.section("steering", "Steering: edit a latent, watch the model")
    results = read_results(data.root)
    if not results:
        s.parts.append(hint(f"No steering results in this run: `superscope steer {data.root} --latent F [F …] "
                            "--alpha A --prompt TEXT` writes them (steering/<name>.json + .html)."))
        return
    s.parts.append(caption("Each edit keeps the SAE's error term x − x̂; KL(clean ‖ steered) and the CE change are "
                           "means over held-out tokens; the dose-response sweeps the edit's value."))
    for r in results:
        g, c = r["generation"], r["cost"]
        edits = ", ".join(f"f{e['latent']} {e['op']} {e['value']:g} @ {e['hook']}" for e in r["edits"])
        s.parts.append(f"<h3>{html.escape(edits)}</h3>")
        s.parts.append(table([{"continuation": "unsteered", "text": g["prompt"] + g["clean"]},
                              {"continuation": "steered", "text": g["prompt"] + g["steered"]}]))
        s.parts.append(table([{"KL": c["kl"], "CE clean": c["ce_clean"], "CE steered": c["ce_steered"],
                               "ΔCE": c["ce_delta"], "tokens": c["n_tokens"],
                               "mean z clean": c["latents"][0]["clean"], "mean z after": c["latents"][0]["after"]}]))
        dose = DoseResponse(**{k: tuple(v) if isinstance(v, list) else v for k, v in r["dose"].items()})
        s.parts.append(page.figure(dose.figure()))
