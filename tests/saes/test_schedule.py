"""The default learning rate accounts for the length of the run (saes/schedule.py)."""

import math

import pytest

from superscope.activations.toy import ToyConfig, ToySource
from superscope.saes import SAEConfig, TrainConfig, Trainer, evaluate, train
from superscope.saes.schedule import LONG_RUN_STEPS, default_lr


def test_long_runs_keep_gao_et_al_rule():
    assert default_lr(2**14) == pytest.approx(2e-4)
    assert default_lr(2**14, LONG_RUN_STEPS) == pytest.approx(2e-4)
    assert default_lr(2**16, 100_000) == pytest.approx(1e-4)


def test_short_runs_get_more_by_the_square_root_of_the_shortfall():
    gao = default_lr(4608)
    assert default_lr(4608, LONG_RUN_STEPS // 4) == pytest.approx(2 * gao)
    lrs = [default_lr(4608, t) for t in (1, 10, 49, 156, 1000, LONG_RUN_STEPS, 10**6)]
    assert lrs == sorted(lrs, reverse=True)
    # the main job's measured lr (analyses/pipeline/config.py: 1.5e-3 at F = 4608, 640k tokens / 4096 = 157 steps)
    assert default_lr(4608, math.ceil(640_000 / 4096)) == pytest.approx(1.5e-3, rel=0.05)


def test_trainer_uses_the_step_aware_default():
    tc = TrainConfig(total_tokens=200_000, batch_size=4096, progress=False)
    assert Trainer(SAEConfig(d_in=16, d_sae=4608, k=4), tc).base_lr == pytest.approx(default_lr(4608, 49))
    explicit = TrainConfig(total_tokens=200_000, batch_size=4096, progress=False, lr=1e-3)
    assert Trainer(SAEConfig(d_in=16, d_sae=4608, k=4), explicit).base_lr == 1e-3


def test_a_short_run_with_library_defaults_reconstructs():
    """30 steps with the defaults, as a notebook user runs it. Gao's lr alone (1.1e-3 here) ends at FVU 2.2
    (the decoder has barely moved from its random start); the step-aware default reaches < 0.8."""
    src = ToySource(ToyConfig(d=32, n_features=256, mean_active=4, seed=0))
    sae = train(SAEConfig(architecture="mutual_choice", d_in=32, d_sae=512, k=4), src.batches(256, 30, seed=1),
                TrainConfig(total_tokens=256 * 30, batch_size=256, progress=False))
    assert evaluate(sae, src.batches(2048, 1, seed=99)).fvu < 0.8
