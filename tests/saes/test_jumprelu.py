"""JumpReLU SAE (Rajamanoharan et al. 2024; Anthropic's January 2025 update): the straight-through estimators
against their formulas on hand cases and a dense reference, float32 thresholds under bf16, the loss terms
on hand cases, the L0-target controller on a toy, the SAELens round trip, checkpoint/resume."""

from __future__ import annotations

import json
import math

import pytest
import torch

from superscope.activations.toy import ToyConfig, ToySource
from superscope.saes import JumpReLUSAE, SAEConfig, TrainConfig, Trainer, create_sae, evaluate, load_sae, train
from superscope.saes.interop import export_saelens, import_saelens
from superscope.saes.jumprelu_losses import jumprelu, pre_act_loss, step, tanh_sparsity


def _sae(d_in=8, d_sae=16, k=3, seed=0, **kw) -> JumpReLUSAE:
    sae = create_sae(SAEConfig(architecture="jumprelu", d_in=d_in, d_sae=d_sae, k=k, **kw))
    sae.reset_parameters(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        sae.b_enc.copy_(0.3 * torch.randn(d_sae, generator=gen))
        sae.b_dec.copy_(0.2 * torch.randn(d_in, generator=gen))
        sae.log_threshold.uniform_(-1.0, 0.3, generator=gen)
    return sae


# ---- the estimators ------------------------------------------------------------------------------------
def test_threshold_gradient_equals_the_ste_formula_on_a_hand_case():
    # two latents, θ = (1.0, 0.5), ε = 0.2: the window is |pre − θ| < 0.1
    theta = torch.tensor([1.0, 0.5], requires_grad=True)
    cols = torch.tensor([0, 0, 0, 1, 1])
    pre = torch.tensor([1.05, 0.95, 1.3, 0.45, 0.7], requires_grad=True)
    upstream = torch.tensor([2.0, 3.0, 5.0, 7.0, 11.0])
    z = jumprelu(pre, theta, cols, 0.2, False)
    assert z.tolist() == pytest.approx([1.05, 0.0, 1.3, 0.0, 0.7])
    (z * upstream).sum().backward()
    # ∂z/∂θ = −(θ/ε)·1[|pre − θ| < ε/2]: latent 0 has entries 1.05 and 0.95 in its window, latent 1 has 0.45
    assert theta.grad.tolist() == pytest.approx([-(1.0 / 0.2) * (2.0 + 3.0), -(0.5 / 0.2) * 7.0])
    assert pre.grad.tolist() == pytest.approx([2.0, 0.0, 5.0, 0.0, 11.0])  # H(pre − θ): no STE to the input

    theta.grad = pre.grad = None
    (jumprelu(pre, theta, cols, 0.2, True) * upstream).sum().backward()
    assert pre.grad.tolist() == pytest.approx([2.0 + 5.0 * 2.0, 5.0 * 3.0, 5.0, 2.5 * 7.0, 11.0])  # + (θ/ε)·K

    theta.grad = pre.grad = None
    h = step(pre, theta, cols, 0.2, True)
    assert h.tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]
    (h * upstream).sum().backward()
    assert theta.grad.tolist() == pytest.approx([-(2.0 + 3.0) / 0.2, -7.0 / 0.2])  # ∂H/∂θ = −(1/ε)·K
    assert pre.grad.tolist() == pytest.approx([2.0 / 0.2, 3.0 / 0.2, 0.0, 7.0 / 0.2, 0.0])


@pytest.mark.parametrize("ste_to_input", [False, True])
def test_sparse_forward_and_gradients_equal_the_dense_definition(ste_to_input):
    sae = _sae(jumprelu_bandwidth=0.5, jumprelu_ste_to_input=ste_to_input, input_scale=1.3)
    sae.train()
    x = torch.randn(40, 8, generator=torch.Generator().manual_seed(3))
    out = sae(x)
    upstream = torch.randn(40, 8, generator=torch.Generator().manual_seed(4))
    (out.x_hat_scaled * upstream).sum().backward()
    ours = {n: p.grad.clone() for n, p in sae.named_parameters()}
    sae.zero_grad()
    pre = (1.3 * x - sae.b_dec) @ sae.W_enc + sae.b_enc
    theta = sae.log_threshold.exp().detach()
    x_hat = (pre * (pre > theta)) @ sae.W_dec + sae.b_dec
    torch.testing.assert_close(out.x_hat_scaled, x_hat)
    (x_hat * upstream).sum().backward()
    ste = theta / 0.5 * ((pre - theta).abs() < 0.25).float() * (upstream @ sae.W_dec.T)
    assert ste.abs().sum() > 0  # the hand-picked thresholds do put pairs in the window
    torch.testing.assert_close(ours["log_threshold"], -ste.sum(0).detach() * theta)  # chain rule through exp
    torch.testing.assert_close(ours["W_dec"], sae.W_dec.grad)
    extra = ste.sum(0).detach() if ste_to_input else 0.0
    torch.testing.assert_close(ours["b_enc"], sae.b_enc.grad + extra)


def test_tanh_penalty_gradient_to_theta_equals_the_dense_definition():
    # the window's lower half (z = 0, outside the codes) gives θ the tanh loss's gradient c'·‖W_dec,f‖ too
    sae = _sae(jumprelu_bandwidth=0.5, jumprelu_sparsity_coef=2.0, jumprelu_pre_act_coef=0.0).train()
    x = torch.randn(40, 8, generator=torch.Generator().manual_seed(6))
    sae.penalty(sae(x), torch.zeros(16, dtype=torch.bool)).backward()
    ours = sae.log_threshold.grad.clone()
    pre = ((x - sae.b_dec) @ sae.W_enc + sae.b_enc).detach()
    theta = sae.log_threshold.exp().detach()
    c = 4.0 / math.sqrt(8)
    z = pre * (pre > theta)
    dS_dz = 2.0 / (40 * 8) * c * (1 - torch.tanh(c * z).pow(2))  # ‖W_dec,f‖ = 1
    ste = theta / 0.5 * ((pre - theta).abs() < 0.25).float() * dS_dz
    assert bool(((pre - theta).abs() < 0.25).any() & (pre <= theta).any())
    torch.testing.assert_close(ours, -ste.sum(0) * theta)


def test_eval_codes_are_the_plain_jumprelu():
    sae = _sae().eval()
    x = torch.randn(30, 8)
    pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
    torch.testing.assert_close(sae.encode(x), (pre * (pre > sae.theta_F)).detach())


# ---- float32 thresholds --------------------------------------------------------------------------------
def test_thresholds_stay_float32_under_bf16(monkeypatch):
    # bf16 training (cfg.dtype): every parameter bf16 but log θ, and an Adam step bf16 would round away is kept.
    # The reference kernels: the CPU sparse decode's backward (torch.sparse.sampled_addmm) has no bf16 kernel.
    monkeypatch.setenv("SUPERSCOPE_KERNELS", "reference")
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(5)) * 2
    tc = TrainConfig(total_tokens=64 * 4, batch_size=64, progress=False, lr=1e-3)
    cfg = SAEConfig(architecture="jumprelu", d_in=8, d_sae=16, k=3, jumprelu_bandwidth=1.0, dtype="bfloat16")
    trainer = Trainer(cfg, tc)
    trainer.initialise(x)
    trainer.sae.train()
    sae = trainer.sae
    assert sae.W_enc.dtype == torch.bfloat16 and sae.log_threshold.dtype == torch.float32
    before = sae.log_threshold.detach().clone()
    trainer.train_step(x)
    after = sae.log_threshold.detach()
    assert sae.log_threshold.grad.dtype == torch.float32
    # an Adam step of lr = 1e-3 in log θ moves θ by ~0.1 %: kept in float32, where bfloat16's spacing
    # (2⁻⁷ relative at most, 8 significant bits) rounds most of them away
    theta_before, theta_after = before.exp(), after.exp()
    lost_in_bf16 = (theta_after != theta_before) & (theta_after.bfloat16() == theta_before.bfloat16())
    assert int(lost_in_bf16.sum()) >= 8
    assert sae.to(torch.bfloat16).log_threshold.dtype == torch.float32  # .to(dtype) leaves θ alone

    # under autocast the pre-activations are bf16; the estimator's θ and its gradient stay float32
    theta = torch.full((4,), 1.0, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pre = (torch.linspace(0.9, 1.2, 8)[:, None] @ torch.ones(1, 1)).squeeze(1).bfloat16().requires_grad_()
        z = jumprelu(pre, theta, torch.arange(8) % 4, 0.5, True)
        assert z.dtype == torch.bfloat16
        z.float().sum().backward()
    assert theta.grad.dtype == torch.float32 and pre.grad.dtype == torch.bfloat16
    torch.testing.assert_close(theta.grad, torch.full((4,), -2.0 * 2.0))  # every pair in the window: −(θ/ε)·1, 2 per latent


# ---- loss terms ----------------------------------------------------------------------------------------
def test_tanh_sparsity_and_pre_act_loss_on_hand_cases():
    values = torch.tensor([0.5, 0.0, 2.0])
    cols = torch.tensor([0, 1, 1])
    norms = torch.tensor([1.0, 2.0, 3.0])
    expected = math.tanh(4 * 0.5 * 1.0) + 0.0 + math.tanh(4 * 2.0 * 2.0)
    assert float(tanh_sparsity(values, cols, norms, 4.0)) == pytest.approx(expected)

    # pre = xc·W_enc + b_enc for two tokens, three latents; latents 0 and 2 dead
    xc = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    W_enc = torch.tensor([[0.5, 1.0, -1.0], [0.25, 0.0, 1.0]])
    b_enc = torch.tensor([0.0, 0.1, 0.2])
    theta = torch.tensor([1.0, 5.0, 0.5])
    dead = torch.tensor([True, False, True])
    # pre[:, 0] = (0.5, 0.5), pre[:, 2] = (−0.8, 2.2): ReLU(θ − pre) = (0.5, 0.5) and (1.3, 0)
    expected = (0.5 + 0.5) * 1.0 + (1.3 + 0.0) * 3.0
    assert float(pre_act_loss(xc, W_enc, b_enc, theta, norms, dead)) == pytest.approx(expected)
    assert float(pre_act_loss(xc, W_enc, b_enc, theta, norms, torch.zeros(3, dtype=torch.bool))) == 0.0


def test_penalty_is_per_token_over_d():
    sae = _sae(jumprelu_sparsity_coef=0.7, jumprelu_pre_act_coef=0.0).train()
    x = torch.randn(20, 8)
    out = sae(x)
    dense = out.codes.to_dense()
    S = torch.tanh(4.0 / math.sqrt(8) * dense * sae.W_dec.norm(dim=1)).sum()
    penalty = sae.penalty(out, torch.zeros(16, dtype=torch.bool)).detach()
    assert float(penalty) == pytest.approx(float(0.7 * S.detach() / (20 * 8)), rel=1e-5)


# ---- L0 target -----------------------------------------------------------------------------------------
def test_l0_target_mode_reaches_the_target_on_the_toy():
    src = ToySource(ToyConfig(d=32, n_features=128, mean_active=4.0, seed=1000))
    cfg = SAEConfig(architecture="jumprelu", d_in=32, d_sae=256, k=4, jumprelu_bandwidth=0.5)
    tc = TrainConfig(total_tokens=256 * 300, batch_size=256, lr=1e-2, aux_loss="none", progress=False)
    sae = train(cfg, src.batches(256, seed=1), tc)
    result = evaluate(sae, src.batches(2048, 2, seed=5))
    assert abs(result.l0_mean - 4) <= 0.4, result.l0_mean
    assert int(sae.controller_steps) == 300 and sae.sparsity_coef != 1.0  # λ moved


# ---- SAELens ---------------------------------------------------------------------------------------------
def test_round_trip_with_sae_lens(tmp_path):
    from sae_lens import SAE

    sae = _sae(input_scale=0.6).eval()
    export_saelens(sae, tmp_path / "ours")
    assert json.loads((tmp_path / "ours" / "cfg.json").read_text())["architecture"] == "jumprelu"
    loaded = SAE.load_from_disk(tmp_path / "ours")
    x = torch.randn(50, 8) * 2
    codes = sae.encode(x)
    assert (codes > 0).any() and (codes == 0).any()
    torch.testing.assert_close(loaded.encode(x), codes, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(loaded.decode(loaded.encode(x)), sae(x).x_hat, atol=1e-5, rtol=1e-5)
    back = import_saelens(tmp_path / "ours")
    assert isinstance(back, JumpReLUSAE)
    torch.testing.assert_close(back.encode(x), codes, atol=1e-5, rtol=1e-5)

    # a folder SAELens itself wrote
    theirs = SAE.from_dict({**loaded.cfg.to_dict(), "architecture": "jumprelu"})
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
        theirs.threshold.copy_(torch.rand(16) * 0.5)
    theirs.save_model(tmp_path / "theirs")
    ours = import_saelens(tmp_path / "theirs")
    assert isinstance(ours, JumpReLUSAE)
    torch.testing.assert_close(ours.encode(x), theirs.encode(x), atol=1e-5, rtol=1e-5)


# ---- checkpoint / resume --------------------------------------------------------------------------------
class _Crash(Exception):
    pass


def _batches(n=12, b=32, d=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(b, d, generator=gen) * 2 + 1 for _ in range(n)]


def _crashing(batches, after):
    for i, b in enumerate(batches):
        if i == after:
            raise _Crash()
        yield b


def test_checkpoint_resume_gives_the_same_final_state(tmp_path):
    cfg = SAEConfig(architecture="jumprelu", d_in=8, d_sae=32, k=3, jumprelu_pre_act_coef=1e-2)
    tc = TrainConfig(total_tokens=12 * 32, batch_size=32, checkpoint_every_tokens=96, progress=False,
                     dead_tokens=64, log_every=1)
    reference = train(cfg, _batches(), tc)
    with pytest.raises(_Crash):
        train(cfg, _crashing(_batches(), 7), tc, out_dir=tmp_path)
    resumed = train(cfg, _batches(), tc, out_dir=tmp_path)
    assert reference.state_dict().keys() == resumed.state_dict().keys()
    for (name, a), (_, b) in zip(reference.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    assert int(resumed.controller_steps) == 12
    loaded = load_sae(tmp_path)
    assert isinstance(loaded, JumpReLUSAE) and torch.equal(loaded.log_threshold, reference.log_threshold)


# ---- torchrun ---------------------------------------------------------------------------------------------
def test_two_ranks_match_one_process(tmp_path):
    """Row-local: under torchrun each rank selects on its own rows; the penalty is a per-token mean, so with
    equal slices DDP's gradient average is the global one, and λ / dead latents come from reduced counts."""
    import os
    import subprocess
    import sys

    from superscope.analyses.cli.options import from_args
    from superscope.analyses.cli.torchrun_train import LaunchConfig, build_parser, global_batches

    argv = ["--arch", "jumprelu", "--toy-d", "16", "--toy-features", "64", "--d-sae", "64", "--k", "4",
            "--batch-size", "64", "--total-tokens", str(64 * 12), "--aux-loss", "none", "--dead-tokens", "128",
            "--jumprelu-pre-act-coef", "0.01", "--progress", "false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "superscope.analyses.cli.torchrun_train", *argv, "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    args = build_parser().parse_args(argv)
    launch, tc = from_args(LaunchConfig, args), from_args(TrainConfig, args)
    single = train(from_args(SAEConfig, args, architecture="jumprelu", d_in=16), global_batches(launch, tc)[0], tc)
    distributed = load_sae(tmp_path / "jumprelu")
    for name, a in single.state_dict().items():
        b = distributed.state_dict()[name]
        if a.is_floating_point():
            assert float((a - b).abs().max()) < 1e-5, name
        else:
            assert torch.equal(a, b), name
    assert float(single.log_sparsity_coef) != 0.0  # the controller ran
