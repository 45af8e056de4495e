"""Data-parallel training: `torchrun --nproc_per_node=2` on CPU (gloo) gives the weights of a
single-process run on the same global batches and seed — TopK (row-local selection), Mutual Choice
and Feature Choice (selection over the global batch) — and its mid-run checkpoint resumes in one
process (another world size). One torchrun launch for the whole module."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from superscope.analyses.cli.options import from_args
from superscope.analyses.cli.torchrun_train import LaunchConfig, build_parser, global_batches, main
from superscope.kernels import dispatch
from superscope.saes import SAEConfig, TrainConfig, Trainer, create_sae, load_sae, train
from superscope.saes.distributed import DistributedTrainer, summary_codes
from superscope.saes.global_selection import _top_m_stable, global_rule
from superscope.saes.stats import update_firing_stats

ARCHS = ["topk", "mutual_choice", "feature_choice"]
BATCH, STEPS, CKPT_STEPS = 61, 20, 7  # odd global batch: the two ranks hold 31 and 30 rows
ARGV = ["--arch", *ARCHS, "--toy-d", "16", "--toy-features", "128", "--d-sae", "64", "--k", "4",
        "--batch-size", str(BATCH), "--total-tokens", str(BATCH * STEPS), "--aux-loss", "zipf",
        "--dead-tokens", str(2 * BATCH), "--checkpoint-every-tokens", str(BATCH * CKPT_STEPS), "--log-every", "1",
        "--progress", "false"]
NOISE = 1e-5  # float32 round-off after 20 Adam steps; a changed selection or loss moves weights by ≫ 1e-3


def _configs(arch: str, argv: tuple[str, ...] = tuple(ARGV)) -> tuple[SAEConfig, TrainConfig, LaunchConfig]:
    """The configs the command line builds from ``argv`` (same parser, same code)."""
    args = build_parser().parse_args(list(argv))
    launch, tc = from_args(LaunchConfig, args), from_args(TrainConfig, args)
    return from_args(SAEConfig, args, architecture=arch, d_in=launch.toy_d), tc, launch


@functools.cache
def _single_process(arch: str, argv: tuple[str, ...] = tuple(ARGV)) -> torch.nn.Module:
    cfg, tc, launch = _configs(arch, argv)
    return train(cfg, global_batches(launch, tc)[0], tc)


def _torchrun(argv: list[str], out) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "superscope.analyses.cli.torchrun_train", *argv, "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "on 2 process(es)" in proc.stdout


def _max_diff(a: torch.nn.Module, b: torch.nn.Module) -> dict[str, float]:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name, t in sa.items():
        if not t.is_floating_point():
            assert torch.equal(t, sb[name]), name  # dead-feature counters: exactly equal
    return {n: float((t - sb[n]).abs().max()) for n, t in sa.items() if t.is_floating_point()}


@pytest.fixture(scope="module")
def torchrun_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    _torchrun(ARGV, out)
    return out


@pytest.mark.parametrize("arch", ARCHS)
def test_two_ranks_match_one_process(torchrun_out, arch, record_property):
    distributed = load_sae(torchrun_out / arch)
    diffs = _max_diff(_single_process(arch), distributed)
    weights = max(diffs[n] for n in ("W_enc", "b_enc", "W_dec", "b_dec"))
    record_property(f"max_abs_weight_diff_{arch}", weights)
    print(f"{arch}: max |Δ| weights {weights:.3g}; per tensor {diffs}")
    assert weights < NOISE and max(diffs.values()) < NOISE, diffs
    steps = [json.loads(line)["step"] for line in (torchrun_out / arch / "train_log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1))  # rank 0 alone logs, each step once


def test_two_ranks_fit_the_same_zipf_capacities(tmp_path):
    """FC with zipf capacities and a fitted exponent: the demand counts are all_reduced, so both ranks
    rank and fit on the global batch exactly as one process does (statistics bit-equal). Weights agree
    to 1e-3, not 1e-5: tail features get capacity 0–1 and ~zero gradients, and Adam (g/√v) turns the
    round-off of such gradients into full-size steps. Without the all_reduce (each rank counting its
    own rows) the demand statistics differ and the test fails (checked by hand)."""
    argv = ("--arch", "feature_choice", *ARGV[1 + len(ARCHS):], "--capacity-mode", "zipf")
    _torchrun(list(argv), tmp_path)
    distributed, single = load_sae(tmp_path / "feature_choice"), _single_process("feature_choice", argv)
    for name in ("demand_ema_F", "freq_ema_F", "tokens_since_fired_F"):
        assert torch.equal(getattr(distributed, name), getattr(single, name)), name
    assert bool((single.demand_ema_F > 0).any())
    assert torch.equal(distributed.capacities(BATCH), single.capacities(BATCH))
    assert len(set(single.capacities(BATCH).tolist())) > 2  # zipf, not uniform
    diffs = _max_diff(single, distributed)
    assert max(diffs[n] for n in ("W_enc", "b_enc", "W_dec", "b_dec")) < 1e-3, diffs


def test_distributed_checkpoint_resumes_in_one_process(torchrun_out, tmp_path):
    arch = "mutual_choice"
    folder = tmp_path / arch
    shutil.copytree(torchrun_out / arch / "checkpoints", folder / "checkpoints")
    state = json.loads((folder / "checkpoints" / "latest.json").read_text())
    assert state["checkpoint"] == f"step_{(STEPS // CKPT_STEPS) * CKPT_STEPS:09d}"  # written by the 2-rank run
    cfg, tc, launch = _configs(arch)
    resumed = train(cfg, global_batches(launch, tc)[0], tc, out_dir=folder)  # world size 1 from here
    diffs = _max_diff(_single_process(arch), resumed)
    assert max(diffs.values()) < NOISE, diffs


@pytest.mark.parametrize("arch", ["mutual_choice", "feature_choice"])
def test_rank_local_selection_would_differ(arch):
    """Guards the test above: on its data, selecting within each rank's rows is not the global rule."""
    cfg, tc, launch = _configs(arch)
    first = next(global_batches(launch, tc)[0])
    trainer = Trainer(cfg, tc)
    trainer.initialise(first)
    sae = trainer.sae.train()
    acts = sae.dense_preacts(first * sae.cfg.input_scale - sae.b_dec).clamp_min(0)

    def chosen(a, n_rows):
        if arch == "mutual_choice":
            crow, cols = dispatch.topm_global(a, cfg.k * n_rows)
        else:
            crow, cols = dispatch.topm_per_column(a, sae.capacities(n_rows))
        mask = torch.zeros(a.shape, dtype=torch.bool)
        mask[torch.repeat_interleave(torch.arange(a.shape[0]), crow.diff()), cols] = True
        return mask

    local = torch.cat([chosen(half, half.shape[0]) for half in acts.tensor_split(2)])
    assert not torch.equal(chosen(acts, acts.shape[0]), local)


def test_top_m_stable_keeps_exactly_m_and_breaks_ties_by_position():
    vals = torch.tensor([3.0, 1.0, 2.0, 2.0, 2.0, 0.5])
    assert _top_m_stable(vals, 3).tolist() == [True, False, True, True, False, False]
    assert _top_m_stable(vals, 10).all()


@pytest.mark.parametrize("arch", ["mutual_choice", "feature_choice", "topk"])
def test_summary_codes_update_statistics_like_the_codes(arch):
    """The per-feature (count, min) summary gives the same statistics and thresholds as the codes."""
    cfg = SAEConfig(architecture=arch, d_in=12, d_sae=48, k=4)
    x = torch.randn(40, 12)
    a, b = create_sae(cfg).train(), create_sae(cfg).train()
    b.load_state_dict(a.state_dict())
    for _ in range(2):
        out = a(x)
        update_firing_stats(a, out, 0.9)
        a.after_step(out, 0.9)
        out_b = b(x)
        vals = out_b.codes.values_N.detach()
        fired = vals > 0
        cols = out_b.codes.cols_N[fired]
        count = torch.bincount(cols, minlength=48)
        low = torch.full((48,), torch.inf).scatter_reduce(0, cols, vals[fired], "amin")
        summary = out_b._replace(codes=summary_codes(count, low, 40))
        update_firing_stats(b, summary, 0.9)
        b.after_step(summary, 0.9)
    for name, t in a.state_dict().items():
        assert torch.equal(t, b.state_dict()[name]), name


def test_bad_input(capsys):
    with pytest.raises(RuntimeError, match="torchrun"):
        DistributedTrainer(SAEConfig(d_in=8, d_sae=16, k=2), TrainConfig())
    with pytest.raises(ValueError, match="unknown SAE architecture"):
        global_rule("some_new_variant")  # a batch-dependent variant without a rule: tests/saes/test_arch_facts.py
    assert main(["--arch", "topk", "--d-sae", "16", "--k", "2"]) == 1
    assert "give --activations" in capsys.readouterr().err
