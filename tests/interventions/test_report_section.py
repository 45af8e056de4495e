"""The report's Steering section: a note naming the command without results; with a result written by
steer_run/write_result, both continuations, the cost table and the dose-response figure."""

from __future__ import annotations

from superscope.kernels.threads import torch_threads
from tests.interventions.steer_run import build_steer_run


def test_steering_section(tmp_path):
    from superscope.analyses.report import ReportConfig, build_report
    from superscope.interventions.run_folder import SteerConfig, steer_run, write_result

    with torch_threads(1):
        run = build_steer_run(tmp_path)
        cfg = ReportConfig(difficulty_tokens=16, n_feature_cards=0)
        text, page = build_report(run, cfg)
        assert "No steering results in this run: `superscope steer" in text
        result = steer_run(run, SteerConfig(latent=(7,), alpha=30.0, prompt="Note 3: sparse", max_new_tokens=5,
                                            contexts=3, context_len=8, sweep=(0.0, 15.0, 30.0)))[0]
        write_result(run, result)
        before = page.n_figures
        text, page = build_report(run, cfg)
    section = next(s for s in page.sections if s.key == "steering")
    body = "\n".join(section.parts)
    assert "f7 add 30 @ blocks.0.hook_resid_post" in body
    assert "Note 3: sparse" + result.generation.steered in body.replace("&#x27;", "'").replace("&quot;", '"') \
        or result.generation.steered == ""
    assert page.n_figures == before + 1 and "plotly" in body
