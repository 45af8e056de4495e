"""End-to-end training on CUDA: every registered architecture, a few steps through ``saes.train``, with
the zipf aux loss (s fitted and given), AuxK, and Feature Choice's zipf capacities (issue 12: FC crashed
at its first ``after_step`` on CUDA; one forward pass never reached it). Skipped without CUDA
(marker ``gpu``); tests/saes/test_device_placement.py catches the same class of bug on a CPU.
"""

from __future__ import annotations

import math

import pytest
import torch

from superscope.kernels import dispatch
from superscope.saes import SAEConfig, TrainConfig, evaluate, known_architectures, train

from .test_device_placement import CASES, batches_on, case_id, train_case

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")


def _check_trained(sae, batches: list[torch.Tensor]) -> None:
    for name, t in [*sae.named_parameters(), *sae.named_buffers()]:
        assert t.device.type == "cuda", name
        assert bool(torch.isfinite(t.float()).all()), name
    buffers = dict(sae.named_buffers())
    theta = buffers.get("theta", buffers.get("theta_F"))
    if theta is not None:
        assert float(theta.max()) > 0  # after_step ran on CUDA and learned thresholds
    result = evaluate(sae, batches[:2])  # inference mode on CUDA inputs
    assert result.n_tokens == 2 * batches[0].shape[0] and math.isfinite(result.fvu)
    sae.train()
    out = sae(batches[0])  # batch selection on CUDA after training
    assert out.x_hat.device.type == "cuda"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_training_runs_on_cuda(case):
    batches = batches_on(CUDA)
    _check_trained(train_case(*case, batches), batches)


@pytest.mark.parametrize("case", [c for c in CASES if c[2].get("zipf_s", 1.0) is None], ids=case_id)
def test_training_runs_on_cuda_with_the_reference_kernels(case, monkeypatch):
    monkeypatch.setenv(dispatch.ENV_VAR, "reference")
    batches = batches_on(CUDA)
    _check_trained(train_case(*case, batches), batches)


@pytest.mark.parametrize("arch", known_architectures())
def test_training_runs_on_cuda_at_a_realistic_width(arch):
    """Shapes past the toy ones (the Triton kernels' blocks and the selection's candidate pruning)."""
    gen = torch.Generator().manual_seed(1)
    batches = [torch.randn(512, 64, generator=gen).to(CUDA) for _ in range(6)]
    sae_kw = {"capacity_mode": "zipf", "zipf_exponent": 1.0} if arch == "feature_choice" else {}
    cfg = SAEConfig(architecture=arch, d_in=64, d_sae=1000, k=8, **sae_kw)
    tc = TrainConfig(total_tokens=512 * 6, batch_size=512, progress=False, lr=1e-3, dead_tokens=512,
                     aux_loss="zipf", zipf_s=None)
    _check_trained(train(cfg, batches, tc), batches)


def test_zipf_capacities_are_the_same_on_cuda_and_cpu():
    """The capacities are a function of the demand EMA only, whatever its device."""
    for exponent in (1.0, None):
        batches = batches_on(CUDA)
        sae = train_case("feature_choice", {"capacity_mode": "zipf", "zipf_exponent": exponent},
                         {"aux_loss": "auxk"}, batches)
        on_cuda = sae.capacities(256)
        assert on_cuda.device.type == "cuda" and int(on_cuda.sum()) == 2 * 256
        on_cpu = sae.cpu().capacities(256)
        # equal up to a rounding unit (which member of a tie group gets it: topk's tie order per device)
        assert int((on_cuda.cpu() - on_cpu).abs().max()) <= 1 and int(on_cpu.sum()) == 2 * 256
