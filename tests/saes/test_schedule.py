"""The default learning rate accounts for the length of the run (saes/schedule.py)."""

import math

import pytest

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
    # the main job's measured lr (analyses/run_config.py: 1.5e-3 at F = 4608, 640k tokens / 4096 = 157 steps)
    assert default_lr(4608, math.ceil(640_000 / 4096)) == pytest.approx(1.5e-3, rel=0.05)
