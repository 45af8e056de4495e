"""Fault tolerance: a job killed with SIGKILL (no cleanup runs) leaves no half-written file under a
final name, and the resumed job ends exactly where an uninterrupted one does.

- Training: a subprocess (``python -m superscope.analyses.cli.torchrun_train``) is SIGKILLed at a random moment
  after its first checkpoint appeared. It checkpoints every 2 steps, so the kill often lands inside a
  checkpoint write. Resumed, its final SAE is bitwise the uninterrupted run's.
- Sharded harvest: a rank is SIGKILLed halfway through writing a shard file, or in the middle of a
  shard's forward passes. Resumed on another world size, the merged harvest holds every token once
  and equals a plain single-process harvest. The model is a tiny random Llama saved to disk and
  loaded through ``load_model`` (the real loading and harvest path, only smaller).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from superscope.analyses.cli.options import from_args
from superscope.analyses.cli.torchrun_train import LaunchConfig, build_parser, global_batches, main
from superscope.saes import SAEConfig, TrainConfig, load_sae, train
from tests.tiny_model import build_tiny_model

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
STEPS, BATCH = 48, 32
TRAIN_ARGV = ["--arch", "mutual_choice", "--toy-d", "8", "--toy-features", "64", "--d-sae", "32", "--k", "3",
              "--batch-size", str(BATCH), "--total-tokens", str(BATCH * STEPS), "--checkpoint-every-tokens",
              str(2 * BATCH), "--aux-loss", "zipf", "--dead-tokens", str(2 * BATCH), "--log-every", "1",
              "--progress", "false"]


def check_files_intact(root: Path) -> list[Path]:
    """Every JSON / safetensors file under its final name parses completely, every JSONL line but a
    torn last one parses; returns the temp files (``.<name>.<random>.tmp``) of interrupted writes."""
    temps = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            temps.append(path)
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".safetensors":
            load_file(path)
        elif path.suffix == ".jsonl":
            for line in path.read_text().splitlines()[:-1]:
                json.loads(line)
    return temps


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {path} appeared: {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.005)


def test_training_killed_at_a_random_point_resumes_to_identical_weights(tmp_path):
    argv = [*TRAIN_ARGV, "--out", str(tmp_path)]
    run = tmp_path / "mutual_choice"
    proc = subprocess.Popen([sys.executable, "-m", "superscope.analyses.cli.torchrun_train", *argv], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(run / "checkpoints" / "latest.json", proc)
    delay = random.uniform(0.0, 0.1)
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = json.loads((run / "checkpoints" / "latest.json").read_text())["checkpoint"]
    assert proc.returncode == -signal.SIGKILL and not (run / "train_state.json").exists(), \
        f"the run finished before the kill ({delay:.3f} s after the first checkpoint); make it longer"
    temps = check_files_intact(tmp_path)
    print(f"killed {delay:.3f} s after the first checkpoint, at {killed_at}; temp files left: {temps}")

    assert main(argv) == 0  # resume, in this process
    args = build_parser().parse_args(argv)
    tc, launch = from_args(TrainConfig, args), from_args(LaunchConfig, args)
    cfg = from_args(SAEConfig, args, architecture="mutual_choice", d_in=launch.toy_d)
    reference = train(cfg, global_batches(launch, tc)[0], tc)
    resumed = load_sae(run)
    for name, value in reference.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), (name, killed_at, delay)
    steps = [json.loads(line)["step"] for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1))
    assert check_files_intact(tmp_path) == []  # the resume removed the interrupted writes' temp files


# ---- sharded harvest ---------------------------------------------------------------------------------
HOOKS = ["blocks.1.hook_resid_post", "blocks.0.hook_mlp_out"]
HARVEST = dict(n_tokens=30 * 32, context_len=32, batch_size=3, contexts_per_shard=4, progress=False)
KILLERS = {
    # 4th forward: rank 0 of 2 owns shards 0, 2, 4, … (2 forwards each), so this is mid-shard 2
    "forward": """
        from superscope.activations.capture import Capture as target
        real, name, at = target.run, "run", 4
    """,
    # 2nd shard file: shard 0 of the second hook, cut to half its bytes, then killed mid-write
    "write": """
        import importlib
        target = importlib.import_module("superscope.saes.atomic_io")  # shards are written through it
        real, name, at = target.save_file, "save_file", 2
    """,
}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> tuple[Path, Path]:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.mark.slow
@pytest.mark.parametrize("kill_in", sorted(KILLERS))
def test_harvest_killed_mid_shard_resumes_without_lost_or_duplicated_tokens(tiny_model, tmp_path, kill_in):
    from superscope.activations.distributed_harvest import harvest_sharded
    from superscope.activations.harvesting import harvest
    from superscope.activations.models import load_model

    model_dir, corpus = tiny_model
    out = tmp_path / "acts"
    script = textwrap.dedent(KILLERS[kill_in]) + textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        calls = 0
        def killing(*args, **kwargs):
            global calls
            calls += 1
            if calls == at and name == "save_file":  # write half the file, die before the rename
                real(*args, **kwargs)
                tmp = Path(args[1])
                tmp.write_bytes(tmp.read_bytes()[: tmp.stat().st_size // 2])
            if calls == at:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        setattr(target, name, killing)
        from superscope.activations.distributed_harvest import harvest_sharded
        from superscope.activations.models import load_model
        harvest_sharded(load_model({str(model_dir)!r}), {HOOKS!r}, out_dir={str(out)!r}, corpus={str(corpus)!r},
                        rank=0, world_size=2, **{HARVEST!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    temps = check_files_intact(out)
    assert len(temps) == (kill_in == "write"), temps  # the half-written shard is only under its temp name
    for hook in HOOKS:
        assert not (out / hook / "manifest.json").exists()  # nothing merged from an incomplete harvest

    model = load_model(str(model_dir))
    resumed = harvest_sharded(model, HOOKS, out_dir=out, corpus=str(corpus), rank=0, world_size=1, **HARVEST)
    reference = harvest(model, HOOKS, corpus=str(corpus), **HARVEST)
    assert check_files_intact(out) == []
    for hook in HOOKS:
        cid, pos = resumed[hook].locations()
        keys = cid * HARVEST["context_len"] + pos
        assert torch.equal(keys, keys.unique())  # strictly increasing: no token twice, corpus order
        assert torch.equal(resumed[hook].token_ids(), reference[hook].token_ids())  # none lost
        acts = torch.cat(list(resumed[hook].batches(10_000, shuffle=False)))
        assert torch.equal(acts, torch.cat(list(reference[hook].batches(10_000, shuffle=False))))
