"""The Evaluations page through AppTest: the tiny run's evals/ (table, probing bars, absorption per letter,
autointerp), a sweep's Pareto plots, a failed metric's line, and a run without results."""

from __future__ import annotations

import shutil

from tests.dashboards.conftest import open_page, problems
from tests.fixtures.tiny_run import HOOKS, copy_run, fake_model


def test_evals_page_shows_table_and_figures(runs_env):
    at = open_page("evals")
    assert problems(at) == []
    assert [t.value for t in at.title] == ["Evaluations"]
    frames = {tuple(f.value.columns)[1]: f.value for f in at.dataframe}  # one table per metric
    assert len(frames) == 4 and all(list(f["SAE"]) == ["TopK", "Feature Choice", "Mutual Choice"]
                                    for f in frames.values())
    columns = set().union(*(f.columns for f in frames.values()))
    assert {"FVU", "CE-loss recovered", "Probe: top-1", "Absorption", "Detection bal. acc."} <= columns
    assert frames["FVU"]["FVU"].notna().all() and frames["Absorption"]["Absorption"].notna().all()
    assert any("No L0 sweep yet" in i.value for i in at.info)  # the open tab: Pareto
    assert len(at.get("plotly_chart")) == 0  # the closed tabs run nothing
    charts = {}
    for tab in ("Sparse probing", "Absorption", "Autointerp"):  # a URL naming the tab opens it
        at = open_tab(tab)
        assert problems(at) == []
        charts[tab] = len(at.get("plotly_chart"))
        assert any("weak below 1B parameters" in w.value for w in at.warning) == (tab == "Absorption")
    assert charts == {"Sparse probing": 1, "Absorption": 2, "Autointerp": 1}  # absorption: + split latents


def open_tab(tab: str):
    from streamlit.testing.v1 import AppTest

    from tests.dashboards.conftest import APP
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update({"evals_tab": tab})
    at.switch_page("views/evals.py")
    at.run()
    return at


def test_evals_page_with_a_sweep_and_a_failure(tiny_root, tmp_path, monkeypatch):
    from superscope.analyses.evals import suite as S
    from superscope.analyses.evals.suite import MetricEntry, SuiteConfig, run_suite
    from superscope.analyses.evals.sweep import SweepConfig, run_sweep

    run = copy_run(tiny_root, tmp_path, "swept")
    shutil.copytree(run / "heldout" / HOOKS[-1], run / "activations" / HOOKS[-1])
    run_sweep(run, SweepConfig(ks=(2, 4), train_tokens=256, splice_tokens=0), metrics=("core",),
              load_model=fake_model, log=lambda _: None)
    monkeypatch.setitem(S.METRICS, "boom", MetricEntry("tests.analyses.evals.fake_metrics", "BoomConfig",
                                                       "evaluate_boom"))
    run_suite(run, SuiteConfig(metrics=("boom",)), load_model=fake_model, log=lambda _: None)
    monkeypatch.setenv("SUPERSCOPE_RUNS_ROOT", str(tmp_path))
    monkeypatch.setenv("SUPERSCOPE_RUN", "swept")
    at = open_page("evals")
    assert problems(at) == []
    assert not any("No L0 sweep yet" in i.value for i in at.info)
    assert len(at.get("plotly_chart")) >= 1  # the open tab: the FVU Pareto plot
    assert any("planted failure" in w.value for w in at.warning)


def test_evals_page_without_results(tiny_root, tmp_path, monkeypatch):
    run = copy_run(tiny_root, tmp_path, "bare")
    shutil.rmtree(run / "evals")
    monkeypatch.setenv("SUPERSCOPE_RUNS_ROOT", str(tmp_path))
    monkeypatch.setenv("SUPERSCOPE_RUN", "bare")
    at = open_page("evals")
    assert problems(at) == []
    assert any("superscope evals" in i.value for i in at.info)
