"""End-to-end: `superscope run` on the embedded model with a tiny budget writes the run folder of
DESIGN.md, and re-running it resumes (every step skipped)."""

import json

import pytest

from superscope.analyses.pipeline.config import RunConfig
from superscope.analyses.pipeline.main_job import Pipeline, epoch_batches

TINY = dict(n_tokens=2048, eval_tokens=1024, train_tokens=4096, sweep_train_tokens=1024, batch_size=512,
            sweep_layers=(3,), layer=6, expansion=2, k=8, splice_tokens=256, harvest_batch_size=8,
            context_len=64)


@pytest.mark.slow
def test_main_job_writes_the_run_folder_and_resumes(tmp_path):
    logs = []
    cfg = RunConfig(run_dir=str(tmp_path / "run"), feature_data=False, report=False, **TINY)
    root = Pipeline(cfg, log=logs.append).run_all()
    run = json.loads((root / "run.json").read_text())
    assert run["format"] == "superscope.run" and run["main_hook"] == "blocks.6.hook_resid_post"
    assert all(run["steps"][s]["done"] for s in ("harvest", "train", "evaluate", "sweep", "probes"))
    assert {"torch", "superscope"} <= set(run["versions"])
    for hook in ("blocks.6.hook_resid_post", "blocks.3.hook_resid_post"):
        assert (root / "activations" / hook / "manifest.json").exists()
        for arch in ("topk", "feature_choice", "mutual_choice"):
            folder = root / "saes" / hook / arch
            metrics = json.loads((folder / "metrics.json").read_text())
            assert 0 < metrics["eval"]["fvu"] < 1.5 and metrics["eval"]["l0_mean"] > 0
            assert (folder / "cfg.json").exists() and not (folder / "checkpoints").exists()
    main = json.loads((root / "saes/blocks.6.hook_resid_post/mutual_choice/metrics.json").read_text())
    assert main["splice"]["ce_zero"] > main["splice"]["ce_clean"] and main["splice"]["kl_div"] >= 0
    assert "eval_threshold_mode" in main
    entropy = json.loads((root / "probes/superposition_entropy.json").read_text())
    for arch in cfg.main_archs:  # Matryoshka-BatchTopK and JumpReLU: the main layer only
        assert (root / "saes" / "blocks.6.hook_resid_post" / arch / "metrics.json").exists()
        assert not (root / "saes" / "blocks.3.hook_resid_post" / arch).exists()
    # 2 hooks × 3 architectures + the main layer's extra architectures
    assert len(entropy["results"]) == 6 + len(cfg.main_archs) and all(r["f_eff"] >= 1 for r in entropy["results"])
    assert "coverage_table" in json.loads((root / "probes/function_tokens.json").read_text())
    logs.clear()
    Pipeline(cfg, log=logs.append).run_all()
    assert all("skipped" in line for line in logs)


def test_run_folder_with_other_config_is_refused(tmp_path):
    Pipeline(RunConfig(run_dir=str(tmp_path), **TINY)).start()
    with pytest.raises(ValueError, match="another configuration"):
        Pipeline(RunConfig(run_dir=str(tmp_path), **{**TINY, "k": 4})).start()


def test_run_config_checks():
    with pytest.raises(ValueError, match="unknown architectures"):
        RunConfig(archs=("topk", "gated"))
    with pytest.raises(ValueError, match="layer"):
        RunConfig(hook_template="blocks.hook_resid_post")
    with pytest.raises(ValueError, match="n_tokens must be positive"):
        RunConfig(n_tokens=0)


def test_epoch_batches_repeats_and_stops():
    class Src:
        n_tokens, hook = 10, "h"

        def batches(self, b, shuffle, seed, drop_last):
            import torch
            for i in range(self.n_tokens // b):
                yield torch.full((b, 2), float(seed + i))

    batches = list(epoch_batches(Src(), 4, 20, 0))
    assert len(batches) == 5 and batches[2][0, 0] == 1000  # second epoch reshuffled with a new seed
    with pytest.raises(ValueError, match="fewer than one batch"):
        list(epoch_batches(Src(), 64, 100, 0))
