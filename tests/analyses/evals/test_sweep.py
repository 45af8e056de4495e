"""The L0 sweep on the tiny toy run: SAEs trained with saes.train into evals/sweep/<hook>/<arch>_k<k>/,
evaluated by the suite, resumed without retraining, and the Pareto figure (one line per architecture)."""

from __future__ import annotations

import shutil

import pytest

from superscope.analyses.evals.sweep import SweepConfig, pareto_figure, run_sweep
from superscope.analyses.runs.evals import load_evals
from tests.fixtures.tiny_run import ARCHS, HOOKS, copy_run, fake_model, tiny_run

MAIN = HOOKS[-1]
KS = (2, 4)


def quiet(_line: str) -> None:
    pass


@pytest.fixture
def run(tmp_path_factory, tmp_path):
    root = copy_run(tiny_run(tmp_path_factory), tmp_path, "run")
    shutil.copytree(root / "heldout" / MAIN, root / "activations" / MAIN)  # the toy run keeps no training shards
    return root


def sweep(run, **kw):
    cfg = SweepConfig(ks=KS, train_tokens=512, splice_tokens=0, **kw)
    return run_sweep(run, cfg, metrics=("core",), load_model=fake_model, log=quiet)


def test_sweep_trains_evaluates_resumes_and_plots(run):
    report = sweep(run)
    assert report.count("written") == len(ARCHS) * len(KS) and report.count("failed") == 0
    for arch in ARCHS:
        for k in KS:
            folder = run / "evals" / "sweep" / MAIN / f"{arch}_k{k}"
            assert (folder / "sae.safetensors").exists() and (folder / "core.json").exists()
            assert not (folder / "checkpoints").exists()
    points = load_evals(run).sweep_points()
    assert len(points) == len(ARCHS) * len(KS)
    topk = [p for p in points if p["arch"] == "topk"]
    assert [p["l0"] for p in topk] == [float(k) for k in KS]  # TopK fires exactly k per token
    assert all(0 < p["fvu"] < 2 for p in points)
    weights = run / "evals" / "sweep" / MAIN / "topk_k2" / "sae.safetensors"
    before = weights.stat().st_mtime_ns
    again = sweep(run)
    assert again.count("skipped") == len(ARCHS) * len(KS) and weights.stat().st_mtime_ns == before
    fig = pareto_figure(points, "fvu")
    assert len(fig.data) == len(ARCHS)
    assert [t.name for t in fig.data] == ["TopK", "Feature Choice", "Mutual Choice"]
    assert all(list(t.x) == sorted(t.x) for t in fig.data)
    assert len(pareto_figure(points, "ce_loss_score").data) == 0  # no CE measured: no line, no error
    with pytest.raises(ValueError, match="unknown Pareto metric"):
        pareto_figure(points, "nope")


def test_sweep_needs_cached_activations(run):
    shutil.rmtree(run / "activations")
    with pytest.raises(FileNotFoundError, match="no cached training activations"):
        sweep(run)
    with pytest.raises(ValueError, match="ks must be positive"):
        SweepConfig(ks=(0, 8))


def test_sweep_saes_get_feature_data_and_an_interpretability_score(run):
    """Autointerp explains from feature data, which the sweep writes beside each sweep SAE's weights, so
    the interpretability score has a point per (arch, k) on the Pareto plot."""
    cfg = SweepConfig(ks=KS, archs=("topk",), train_tokens=512, splice_tokens=0)
    report = run_sweep(run, cfg, metrics=("core", "autointerp"), load_model=fake_model, log=quiet)
    assert report.count("failed") == 0, report.table()
    for k in KS:
        folder = run / "evals" / "sweep" / MAIN / f"topk_k{k}"
        assert (folder / "features" / "index.json").is_file() and (folder / "autointerp.json").is_file()
    points = [p for p in load_evals(run).sweep_points() if p["arch"] == "topk"]
    assert len(points) == len(KS)
    assert all(p.get("autointerp") is not None and 0 <= p["autointerp"] <= 1 for p in points), points
