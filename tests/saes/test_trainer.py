import dataclasses
import json

import pytest
import torch

from superscope.saes import SAEConfig, TrainConfig, Trainer, load_sae, train


def _batches(n=12, b=32, d=12, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(b, d, generator=gen) * 2 + 1 for _ in range(n)]


class _Crash(Exception):
    pass


def _crashing(batches, after):
    for i, b in enumerate(batches):
        if i == after:
            raise _Crash()
        yield b


@pytest.mark.parametrize("arch", ["topk", "mutual_choice", "feature_choice"])
def test_resume_gives_the_same_final_weights(arch, tmp_path):
    cfg = SAEConfig(architecture=arch, d_in=12, d_sae=48, k=4)
    tc = TrainConfig(total_tokens=12 * 32, batch_size=32, checkpoint_every_tokens=96, progress=False,
                     aux_loss="zipf", dead_tokens=64, log_every=1)
    reference = train(cfg, _batches(), tc)
    with pytest.raises(_Crash):
        train(cfg, _crashing(_batches(), 7), tc, out_dir=tmp_path)
    state = json.loads((tmp_path / "checkpoints" / "latest.json").read_text())
    assert state["checkpoint"] == "step_000000006"
    resumed = train(cfg, _batches(), tc, out_dir=tmp_path)
    for (name, a), (_, b) in zip(reference.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    steps = [json.loads(l)["step"] for l in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 13))
    assert load_sae(tmp_path).cfg.input_scale == reference.cfg.input_scale


def test_trainer_writes_log_and_final_sae(tmp_path):
    tc = TrainConfig(total_tokens=4 * 32, batch_size=32, progress=False, log_every=2)
    sae = train(SAEConfig(d_in=12, d_sae=48, k=4), _batches(4), tc, out_dir=tmp_path)
    lines = [json.loads(l) for l in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [2, 4] and {"fvu", "l0", "lr", "dead_frac"} <= set(lines[0])
    assert (tmp_path / "sae.safetensors").exists() and load_sae(tmp_path).cfg == sae.cfg
    assert sae.cfg.training["total_tokens"] == 128


def test_training_reduces_reconstruction_error():
    from superscope.activations.toy import ToyConfig, ToySource
    src = ToySource(ToyConfig(d=16, n_features=64, mean_active=3))
    t = Trainer(SAEConfig(d_in=16, d_sae=128, k=3), TrainConfig(total_tokens=60 * 256, batch_size=256, progress=False))
    first = None
    for _i, x in enumerate(src.batches(256, 60)):
        if t.sae is None:
            t.initialise(x)
        m = t.train_step(x)
        first = first if first is not None else m["fvu"]
    assert m["fvu"] < 0.5 * first


def test_empty_stream_is_a_clear_error():
    with pytest.raises(ValueError, match="no batches"):
        train(SAEConfig(d_in=12, d_sae=48, k=4), [], TrainConfig(total_tokens=10, progress=False))


def test_lr_schedule_warms_up_and_decays():
    from superscope.saes.schedule import default_lr, lr_factor
    assert default_lr(2**14) == pytest.approx(2e-4)
    f = [lr_factor(s, 100, 10, 0.2) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == 1.0 and f[50] == 1.0 and f[99] < 0.1


@pytest.mark.parametrize("arch", ["mutual_choice", "batchtopk", "feature_choice"])
def test_thresholds_are_calibrated_on_the_final_weights(arch):
    """θ ends as the selection statistic of the final weights on the last batch: threshold mode then
    fires what batch selection picks there, less the entries exactly at θ (z fires where pre > θ)."""
    cfg = SAEConfig(architecture=arch, d_in=12, d_sae=48, k=4)
    tc = TrainConfig(total_tokens=12 * 32, batch_size=32, progress=False, lr=1e-2)
    batches = _batches()
    sae = train(cfg, batches, tc)
    with torch.no_grad():
        picked = sae(batches[-1]).codes  # eval, inference_mode="batch"
        sae.cfg = dataclasses.replace(sae.cfg, inference_mode="threshold")
        fired = sae(batches[-1]).codes
    if arch == "feature_choice":
        picked_F = torch.bincount(picked.cols_N[picked.values_N > 0], minlength=48)
        fired_F = torch.bincount(fired.cols_N, minlength=48)
        full_F = picked_F == sae.capacities(32)  # columns whose m_f-th value is θ_f
        assert torch.equal(fired_F[full_F], picked_F[full_F] - 1)
        assert bool((fired_F[~full_F] >= picked_F[~full_F]).all())  # θ_f = 0: every positive code fires
    else:
        assert fired.cols_N.numel() == int((picked.values_N > 0).sum()) - 1

    uncalibrated = train(cfg, batches, dataclasses.replace(tc, calibrate_thresholds=False))
    name = "theta_F" if arch == "feature_choice" else "theta"
    assert not torch.allclose(getattr(uncalibrated, name), getattr(sae, name))  # the EMA: a different θ
    for (n, a), (_, b) in zip(uncalibrated.state_dict().items(), sae.state_dict().items()):
        if n not in (name, "theta_updates"):
            assert torch.equal(a, b), n  # calibration touches only θ


def test_training_from_a_generator_that_yields_under_no_grad():
    """A harvesting generator often yields inside torch.no_grad(); the step must still build a graph
    and train exactly as it does on plain batches."""
    def harvested():
        with torch.no_grad():
            yield from _batches(4)

    cfg, tc = SAEConfig(d_in=12, d_sae=48, k=4), TrainConfig(total_tokens=4 * 32, batch_size=32, progress=False)
    under_no_grad, plain = train(cfg, harvested(), tc), train(cfg, _batches(4), tc)
    for (name, a), (_, b) in zip(under_no_grad.state_dict().items(), plain.state_dict().items()):
        assert torch.equal(a, b), name
