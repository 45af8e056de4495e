"""The L0-target controller against a simulated plant fitted to the default run's JumpReLU (layer 15, k = 32,
156 steps): with λ = 1 the batch L0 would sit at 1.7·k, L0 ∝ λ_eff^(−0.2) where λ_eff follows λ with a
10-step lag, 5 % batch noise. With η = 0.05 this model ends at L0 ≈ 35.6 after 156 steps, as the real run did
(35.6); the default gains must bring it to k ± 10 % within that budget. Milliseconds: no training."""

from __future__ import annotations

import math

import torch

import superscope.saes.jumprelu as jumprelu_module
from superscope.kernels import SparseCodes
from superscope.saes import SAEConfig, create_sae
from superscope.saes.base import ForwardOutput


def _simulate(steps=156, k=32, free=1.7, sensitivity=0.2, lag=10, batch=256, seed=0) -> list[float]:
    sae = create_sae(SAEConfig(architecture="jumprelu", d_in=8, d_sae=64, k=k)).train()
    gen = torch.Generator().manual_seed(seed)
    log_lambda_eff, l0s = 0.0, []
    for _ in range(steps):
        log_lambda_eff += (float(sae.log_sparsity_coef) - log_lambda_eff) / lag
        l0 = k * free * math.exp(-sensitivity * log_lambda_eff) * (1 + 0.05 * float(torch.randn((), generator=gen)))
        n = round(l0 * batch)
        codes = SparseCodes(torch.linspace(0, n, batch + 1).round().long(), torch.zeros(n, dtype=torch.long),
                            torch.ones(n), 64)
        x = torch.zeros(batch, 8)
        sae.after_step(ForwardOutput(x, codes, x, x), 0.0)
        l0s.append(l0)
    assert int(sae.controller_steps) == steps
    return l0s


def test_default_run_budget_reaches_the_target():
    l0s = _simulate()
    assert abs(sum(l0s[-10:]) / 10 / 32 - 1) <= 0.1, l0s[-10:]


def test_the_old_rate_misses_it(monkeypatch):
    monkeypatch.setattr(jumprelu_module, "CONTROLLER_RATE", 0.05)
    assert sum(_simulate()[-10:]) / 10 / 32 - 1 > 0.1


def test_resume_continues_the_trajectory():
    a = create_sae(SAEConfig(architecture="jumprelu", d_in=8, d_sae=64, k=4)).train()
    x = torch.zeros(2, 8)
    outs = [ForwardOutput(x, SparseCodes(torch.tensor([0, n, 2 * n]), torch.zeros(2 * n, dtype=torch.long),
                                         torch.ones(2 * n), 64), x, x) for n in (9, 7, 5, 3)]
    for out in outs:
        a.after_step(out, 0.0)
    b = create_sae(SAEConfig(architecture="jumprelu", d_in=8, d_sae=64, k=4)).train()
    for out in outs[:2]:
        b.after_step(out, 0.0)
    c = create_sae(SAEConfig(architecture="jumprelu", d_in=8, d_sae=64, k=4)).train()
    c.load_state_dict(b.state_dict())
    for out in outs[2:]:
        c.after_step(out, 0.0)
    assert torch.equal(a.log_sparsity_coef, c.log_sparsity_coef)
    assert torch.equal(a.controller_steps, c.controller_steps)
