"""The evaluation suite's runner on the tiny toy run: result files and their names, resume, a failing
metric, SAE folders outside the run (SAELens too), bad input, and the pipeline's quick step."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest
import torch

from superscope.analyses.evals import suite as S
from superscope.analyses.evals.suite import MetricEntry, SuiteConfig, run_suite
from superscope.analyses.runs.evals import load_evals
from tests.fixtures.tiny_run import ARCHS, HOOKS, copy_run, fake_model, tiny_run

MAIN = HOOKS[-1]
FAKE = "tests.analyses.evals.fake_metrics"


@pytest.fixture
def run(tmp_path_factory, tmp_path):
    return copy_run(tiny_run(tmp_path_factory), tmp_path, "run")


@pytest.fixture
def fake_metrics(monkeypatch):
    monkeypatch.setitem(S.METRICS, "seen", MetricEntry(FAKE, "SeenConfig", "evaluate_seen"))
    monkeypatch.setitem(S.METRICS, "boom", MetricEntry(FAKE, "BoomConfig", "evaluate_boom"))


def quiet(_line: str) -> None:
    pass


def read(path):
    return json.loads(path.read_text())


def test_core_files_have_the_right_names_and_numbers(run):
    report = run_suite(run, SuiteConfig(metrics=("core",)), load_model=fake_model, log=quiet)
    assert report.count("written") == len(ARCHS) and report.count("failed") == 0
    for arch in ARCHS:
        doc = read(run / "evals" / MAIN / arch / "core.json")
        suite = doc["suite"]
        assert (suite["metric"], suite["hook"], suite["architecture"], suite["quick"]) == ("core", MAIN, arch, False)
        assert doc["eval_type_id"] == "core"  # SAEBench's fields at the top level
        metrics = doc["eval_result_metrics"]
        assert set(metrics) >= {"model_performance_preservation", "reconstruction_quality", "shrinkage", "sparsity",
                                "misc_metrics"}
        recorded = read(run / "saes" / MAIN / arch / "metrics.json")
        # CE-loss recovered is taken from metrics.json (the pipeline measured it), not recomputed
        assert suite["summary"]["ce_loss_score"] == recorded["splice"]["ce_loss_recovered"]
        assert doc["eval_result_unstructured"]["splice_source"] == "metrics.json"
    topk = read(run / "evals" / MAIN / "topk" / "core.json")
    recorded = read(run / "saes" / MAIN / "topk" / "metrics.json")["eval"]
    # TopK is per token, so the held-out FVU / L0 equal the pipeline's whatever the batching
    assert topk["suite"]["summary"]["fvu"] == pytest.approx(recorded["fvu"], rel=1e-5)
    assert topk["suite"]["summary"]["l0"] == pytest.approx(recorded["l0_mean"])
    assert not (run / "evals" / HOOKS[0]).exists()  # only the main hook by default


def test_resume_skips_written_results_and_force_recomputes(run):
    run_suite(run, SuiteConfig(metrics=("core",), quick=True), log=quiet)
    path = run / "evals" / MAIN / "topk" / "core.json"
    first = path.stat().st_mtime_ns
    again = run_suite(run, SuiteConfig(metrics=("core",), quick=True), log=quiet)
    assert again.count("skipped") == len(ARCHS) and again.count("written") == 0
    assert path.stat().st_mtime_ns == first
    full = run_suite(run, SuiteConfig(metrics=("core",), archs=("topk",)), log=quiet)  # quick does not stand in
    assert [r.status for r in full.records] == ["written"] and read(path)["suite"]["quick"] is False
    assert run_suite(run, SuiteConfig(metrics=("core",), quick=True, archs=("topk",)),
                     log=quiet).count("skipped") == 1  # a full result does stand in for a quick one
    forced = run_suite(run, SuiteConfig(metrics=("core",), archs=("topk",), force=True), log=quiet)
    assert forced.count("written") == 1


def test_a_failing_metric_records_one_line_and_the_others_go_on(run, fake_metrics):
    report = run_suite(run, SuiteConfig(metrics=("boom", "core", "seen")), load_model=fake_model, log=quiet)
    assert report.count("failed") == len(ARCHS) and report.count("written") == 2 * len(ARCHS)
    boom = read(run / "evals" / MAIN / "mutual_choice" / "boom.json")
    assert boom == {"suite": {**boom["suite"], "error": "RuntimeError: planted failure with a second line"}}
    seen = read(run / "evals" / MAIN / "mutual_choice" / "seen.json")
    assert seen["sae_folder"] == str(run / "saes" / MAIN / "mutual_choice")
    assert seen["cache"].startswith(str(run / "evals" / "cache" / MAIN))
    assert seen["model_vocab"] == fake_model().W_U.shape[1] and seen["size"] == 2
    assert seen["suite"]["summary"] == {"d_in": 16.0, "size": 2.0}  # the headline's numbers
    again = run_suite(run, SuiteConfig(metrics=("boom", "seen")), load_model=fake_model, log=quiet)
    assert again.count("failed") == len(ARCHS) and again.count("skipped") == len(ARCHS)  # failures are retried
    data = load_evals(run)
    rows = data.table_rows(MAIN)
    assert [r["SAE"] for r in rows] == list(ARCHS)
    assert rows[0]["boom error"].startswith("RuntimeError") and rows[0]["FVU"] > 0
    assert len(data.errors()) == len(ARCHS)


def test_a_missing_metric_module_is_that_metrics_error(run, monkeypatch):
    monkeypatch.setitem(S.METRICS, "absent", MetricEntry("tests.analyses.evals.no_such_module", "C", "f"))
    report = run_suite(run, SuiteConfig(metrics=("absent", "core"), archs=("topk",)), load_model=fake_model, log=quiet)
    assert [r.status for r in report.records] == ["failed", "written"]
    assert "no_such_module" in report.records[0].error


def test_sae_folders_outside_the_run_including_saelens(run, tmp_path, fake_metrics):
    from superscope.saes import load_sae
    from superscope.saes.interop import export_saelens

    saelens = export_saelens(load_sae(run / "saes" / MAIN / "topk"), tmp_path / "saelens_topk")
    out = tmp_path / "out"
    report = run_suite(None, SuiteConfig(metrics=("core", "seen"), quick=True), saes=[saelens], out=out,
                       heldout=run / "heldout" / MAIN, load_model=fake_model, log=quiet)
    assert report.count("written") == 2
    doc = read(out / MAIN / "saelens_topk" / "core.json")
    ours = run_suite(run, SuiteConfig(metrics=("core",), archs=("topk",)), log=quiet)
    assert ours.count("written") == 1
    ref = read(run / "evals" / MAIN / "topk" / "core.json")["suite"]["summary"]["fvu"]
    assert doc["suite"]["summary"]["fvu"] == pytest.approx(ref, rel=1e-4)  # export → import keeps the SAE
    assert doc["suite"]["summary"]["ce_loss_score"] is None  # no metrics.json, and the quick core does not splice
    # a further SAE against the run: its held-out activations, results in the run's evals/
    run_suite(run, SuiteConfig(metrics=("core",), quick=True), saes=[saelens], log=quiet)
    assert (run / "evals" / MAIN / "saelens_topk" / "core.json").exists()


def test_width_mismatch_is_one_clear_line(run, tmp_path):
    from superscope.saes import SAEConfig, create_sae, save_sae

    folder = save_sae(create_sae(SAEConfig(architecture="topk", d_in=8, d_sae=32, k=2, hook_name=MAIN)),
                      tmp_path / "narrow")
    with pytest.raises(ValueError, match=r"d_in=8 but the held-out activations .* have d=16") as err:
        run_suite(run, SuiteConfig(metrics=("core",)), saes=[folder], log=quiet)
    assert "\n" not in str(err.value)
    model = SimpleNamespace(cfg=SimpleNamespace(d_model=576), W_U=torch.zeros(576, 4))
    with pytest.raises(ValueError, match=r"d_in=16 but the model's d_model is 576"):
        run_suite(run, SuiteConfig(metrics=("sparse_probing",)), load_model=lambda: model, log=quiet)
    nohook = save_sae(create_sae(SAEConfig(architecture="topk", d_in=16, d_sae=32, k=2)), tmp_path / "nohook")
    with pytest.raises(ValueError, match="names no hook"):
        run_suite(run, SuiteConfig(metrics=("core",)), saes=[nohook], log=quiet)


def test_bad_selection_lines(run):
    with pytest.raises(ValueError, match="unknown metrics"):
        SuiteConfig(metrics=("nope",))
    with pytest.raises(ValueError, match=r"no SAEs at hooks \['blocks.9.hook_resid_post'\]"):
        run_suite(run, SuiteConfig(hooks=("blocks.9.hook_resid_post",)), log=quiet)
    with pytest.raises(ValueError, match="give a run folder or SAE folders"):
        run_suite(None, SuiteConfig(), log=quiet)


def test_pipeline_runs_the_quick_suite(run, monkeypatch, fake_metrics):
    from superscope.analyses.pipeline.config import RunConfig
    from superscope.analyses.pipeline.main_job import Pipeline

    monkeypatch.setattr(S, "METRICS", {k: S.METRICS[k] for k in ("core", "seen", "boom")})
    shutil.rmtree(run / "evals")  # the toy run ships a small evals/ folder
    pipe = Pipeline(RunConfig(run_dir=str(run), layer=1), log=quiet)
    pipe._model = fake_model()
    info = pipe.evals()
    assert info == {"written": 2 * len(ARCHS), "failed": len(ARCHS)}
    doc = read(run / "evals" / MAIN / "topk" / "seen.json")
    assert doc["suite"]["quick"] is True and doc["size"] == 1  # the quick() configuration
