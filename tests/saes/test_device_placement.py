"""Every tensor that training makes takes its device from an input (issue 12: Feature Choice crashed
on CUDA at its first ``after_step``, which built ``torch.full((F,), inf)`` on the CPU and scattered
CUDA indices into it).

A CPU machine catches that class of bug: while ``saes.train`` runs, ``torch.device("meta")`` makes
every factory call without a ``device=`` (full, zeros, arange, tensor, …) produce a data-less meta
tensor, and ``MixedDevices`` raises at the first op whose tensor arguments mix meta with real ones.
(Torch alone misses some: ``cpu_tensor.scatter_(0, idx, meta_src)`` runs and writes garbage.) The
SAE's construction is the one exception: a module is built on the default device and then moved
(``Trainer.initialise`` does ``sae.to(first_batch.device)``), so ``create_sae`` and ``reset_parameters``
run on the CPU. The check is stricter than CUDA in one way: a CPU tensor made on purpose must say
``device="cpu"`` (CUDA would also accept a 0-dim CPU tensor next to CUDA ones).

tests/saes/test_cuda_training.py runs the same cases on a real GPU (marker ``gpu``).
"""

from __future__ import annotations

import contextlib
import functools

import pytest
import torch
import torch.distributed as dist
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from superscope.kernels import dispatch
from superscope.saes import SAEConfig, TrainConfig, known_architectures, train
from superscope.saes import trainer as trainer_module
from superscope.saes.base import BaseSAE
from superscope.saes.distributed import DistributedTrainer

D_IN, D_SAE, K, BATCH, STEPS = 8, 24, 2, 32, 4


def training_cases() -> list[tuple[str, dict, dict]]:
    """(architecture, SAEConfig extras, TrainConfig extras): every registered architecture with the
    zipf aux loss (s fitted and given) and AuxK; Feature Choice also with both kinds of zipf capacities."""
    cases = []
    for arch in known_architectures():
        capacities = [{}]
        if arch == "feature_choice":
            capacities += [{"capacity_mode": "zipf", "zipf_exponent": 1.0}, {"capacity_mode": "zipf"}]
        for sae_kw in capacities:
            for aux in ({"aux_loss": "zipf", "zipf_s": None}, {"aux_loss": "zipf", "zipf_s": 1.0}, {"aux_loss": "auxk"}):
                cases.append((arch, sae_kw, aux))
    return cases


def case_id(case: tuple[str, dict, dict]) -> str:
    arch, sae_kw, tc_kw = case
    parts = [arch, *(f"{k}={v}" for k, v in {**sae_kw, **tc_kw}.items())]
    return ",".join(parts)


CASES = training_cases()


def batches_on(device: str | torch.device, batch: int = BATCH, d_in: int = D_IN) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [(torch.randn(batch, d_in, generator=gen) * 2).to(device) for _ in range(STEPS)]


def train_case(arch: str, sae_kw: dict, tc_kw: dict, batches: list[torch.Tensor], d_sae: int = D_SAE,
               k: int = K) -> BaseSAE:
    """A few steps of ``saes.train``; a dead window of one batch, so that AuxK and the zipf aux loss
    both have features to work on."""
    (batch, d_in), steps = batches[0].shape, len(batches)
    cfg = SAEConfig(architecture=arch, d_in=d_in, d_sae=d_sae, k=k, **sae_kw)
    tc = TrainConfig(total_tokens=batch * steps, batch_size=batch, progress=False, lr=1e-2, dead_tokens=batch,
                     **tc_kw)
    return train(cfg, batches, tc)


def _on_cpu(fn):
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with torch.device("cpu"):
            return fn(*args, **kwargs)
    return wrapped


class MixedDevices(TorchFunctionMode):
    """Raise when one op's tensor arguments are on meta and on another device."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        devices = {t.device.type for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        if "meta" in devices and len(devices) > 1:
            raise RuntimeError(f"{getattr(func, '__name__', func)} mixes a tensor made without a device "
                               f"(on meta here) with tensors on {sorted(devices - {'meta'})}")
        return func(*args, **kwargs)


class StraysOnMeta(contextlib.ExitStack):
    """Factory calls without a device give meta tensors; ops that mix them with real ones raise."""

    def __enter__(self):
        super().__enter__()
        self.enter_context(torch.device("meta"))
        self.enter_context(MixedDevices())
        return self


@pytest.fixture
def strays_on_meta(monkeypatch):
    """Inside the ``with``: a factory call without a device gives a meta tensor (SAE construction aside),
    and an op that mixes it with real tensors raises."""
    monkeypatch.setattr(trainer_module, "create_sae", _on_cpu(trainer_module.create_sae))
    monkeypatch.setattr(BaseSAE, "reset_parameters", _on_cpu(BaseSAE.reset_parameters))
    return StraysOnMeta()


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_training_makes_no_tensor_off_the_input_device(case, strays_on_meta):
    batches = batches_on("cpu")
    with strays_on_meta:
        sae = train_case(*case, batches)
    for name, t in [*sae.named_parameters(), *sae.named_buffers()]:
        assert t.device.type == "cpu", name
        assert bool(torch.isfinite(t.float()).all()), name
    if case[0] in ("mutual_choice", "batchtopk", "feature_choice"):
        theta = dict(sae.named_buffers()).get("theta", dict(sae.named_buffers()).get("theta_F"))
        assert float(theta.max()) > 0  # after_step ran and learned thresholds


@pytest.mark.parametrize("arch", known_architectures())
def test_training_at_a_wider_shape_makes_no_tensor_off_the_input_device(arch, strays_on_meta):
    """B·F past the selection kernels' thresholds: sampled candidate pruning, per-column block bounds."""
    sae_kw = {"capacity_mode": "zipf", "zipf_exponent": 1.0} if arch == "feature_choice" else {}
    batches = batches_on("cpu", batch=256, d_in=16)
    with strays_on_meta:
        train_case(arch, sae_kw, {"aux_loss": "zipf", "zipf_s": None}, batches, d_sae=512, k=8)


@pytest.mark.parametrize("case", [c for c in CASES if c[2].get("zipf_s", 1.0) is None], ids=case_id)
def test_reference_kernels_make_no_tensor_off_the_input_device(case, strays_on_meta, monkeypatch):
    """The naive kernels (``SUPERSCOPE_KERNELS=reference``, also usable on CUDA) under the same check."""
    monkeypatch.setenv(dispatch.ENV_VAR, "reference")
    batches = batches_on("cpu")
    with strays_on_meta:
        train_case(*case, batches)


def test_the_check_sees_a_tensor_made_without_a_device(strays_on_meta):
    x, idx = torch.ones(3), torch.tensor([2, 0, 1])
    with strays_on_meta, pytest.raises(RuntimeError, match="without a device"):
        _ = torch.zeros(3) + x
    with strays_on_meta, pytest.raises(RuntimeError, match="without a device"):
        torch.empty(3).scatter_(0, idx, torch.arange(3.0))  # (torch itself lets this one through)
    with strays_on_meta:
        assert (torch.zeros(3, device=x.device) + x).device.type == "cpu"
        torch.empty(3, device=x.device).scatter_(0, idx, torch.arange(3.0, device=x.device))


@pytest.fixture
def one_rank_group(tmp_path):
    """A gloo process group of one rank in this process (torchrun is not needed for world size 1)."""
    if dist.is_initialized():
        pytest.skip("a process group is already initialised in this process")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("arch", known_architectures())
def test_data_parallel_training_makes_no_tensor_off_the_input_device(arch, one_rank_group, strays_on_meta):
    """``DistributedTrainer``'s own steps too: the global selection rules and ``update_statistics``,
    whose summary codes feed ``after_step`` (FC with zipf capacities, s fitted: the demand all_reduce)."""
    sae_kw = {"capacity_mode": "zipf"} if arch == "feature_choice" else {}
    cfg = SAEConfig(architecture=arch, d_in=D_IN, d_sae=D_SAE, k=K, **sae_kw)
    tc = TrainConfig(total_tokens=BATCH * STEPS, batch_size=BATCH, progress=False, lr=1e-2, dead_tokens=BATCH,
                     aux_loss="zipf", zipf_s=None)
    batches = batches_on("cpu")
    with strays_on_meta:
        sae = DistributedTrainer(cfg, tc).run(batches)
    assert all(t.device.type == "cpu" for t in [*sae.parameters(), *sae.buffers()])
