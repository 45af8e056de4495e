"""The report's evaluation-suite section on the tiny run: table, per-dataset / per-letter / autointerp
figures, the absorption caveat, Pareto plots once a sweep exists, and a note when evals/ is empty."""

from __future__ import annotations

import shutil

import pytest

from superscope.analyses.report import ReportConfig, build_report
from superscope.analyses.report.eval_sections import absorption_figure, autointerp_figure, probing_figure
from superscope.analyses.runs.evals import load_evals
from tests.fixtures.tiny_run import ARCHS, HOOKS, copy_run, fake_model, tiny_run

CFG = ReportConfig(difficulty_tokens=64, n_feature_cards=0)


@pytest.fixture
def run(tmp_path_factory, tmp_path):
    return copy_run(tiny_run(tmp_path_factory), tmp_path, "run")


def section(run):
    _, page = build_report(run, CFG)
    return next(s for s in page.sections if s.key == "evals")


def figures(sec) -> int:
    return sum(part.count("plotly-graph-div") > 0 for part in sec.parts)


def test_section_table_figures_and_caveat(run):
    sec = section(run)
    text = "".join(sec.parts)
    assert all(name in text for name in ("TopK", "Feature Choice", "Mutual Choice", "Probe: top-1", "Absorption"))
    assert "weak below 1B parameters" in text and "No L0 sweep" in text
    assert figures(sec) == 4
    ev = load_evals(run)
    hook = HOOKS[-1]
    probing = probing_figure(ev, hook)
    assert len(probing.data) == 1 + len(ARCHS) and list(probing.data[0].x) == ["toy_even_token", "toy_low_token"]
    assert len(absorption_figure(ev, hook).data) == len(ARCHS)
    assert list(absorption_figure(ev, hook).data[0].x) == list("abcd")
    assert len(autointerp_figure(ev, hook).data) == len(ARCHS)


def test_section_with_a_sweep_has_pareto_plots(run):
    from superscope.analyses.evals.sweep import SweepConfig, run_sweep

    shutil.copytree(run / "heldout" / HOOKS[-1], run / "activations" / HOOKS[-1])
    run_sweep(run, SweepConfig(ks=(2, 4), train_tokens=256, splice_tokens=0), metrics=("core",),
              load_model=fake_model, log=lambda _: None)
    sec = section(run)
    assert "No L0 sweep" not in "".join(sec.parts) and figures(sec) == 5  # + FVU vs L0


def test_section_without_results_is_a_note(run):
    shutil.rmtree(run / "evals")
    sec = section(run)
    assert len(sec.parts) == 1 and "superscope evals" in sec.parts[0]
