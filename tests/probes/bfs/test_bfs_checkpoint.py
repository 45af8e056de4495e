"""The shipped checkpoints load, reproduce their recorded accuracy, and save -> load is the identity."""

import json

import pytest
import torch

from superscope.probes.bfs.checkpoint import SHIPPED, load_bfs_checkpoint, save_bfs_checkpoint
from superscope.probes.bfs.evaluate import accuracy
from superscope.probes.bfs.generator import GraphConfig, generate_problems
from superscope.probes.bfs.model import GPT, ModelConfig

SHIPPED_NAMES = sorted(p.stem for p in SHIPPED.glob("*.json"))


def test_coconut_checkpoint_is_shipped_and_small():
    assert "coconut" in SHIPPED_NAMES
    total = sum(p.stat().st_size for p in SHIPPED.iterdir())
    assert total < 5 * 2**20


@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_shipped_checkpoint_reproduces_recorded_accuracy(name):
    ck = load_bfs_checkpoint(name)
    quick = ck.meta["metrics"]["quick_eval"]
    problems = generate_problems(ck.graph, quick["n"], quick["seed"])
    acc = accuracy(ck.model, problems, ck.vocab, ck.method).accuracy
    assert abs(acc - quick["accuracy"]) <= 1.0 / quick["n"] + 1e-9  # one problem of slack for float noise
    if name == "coconut":
        assert acc >= 0.95


def test_save_load_roundtrip(tmp_path):
    torch.manual_seed(0)
    m = GPT(ModelConfig(vocab_size=32, d_model=16, n_heads=2, d_mlp=32, max_len=64, positions="rotary"))
    save_bfs_checkpoint(tmp_path / "m", m, GraphConfig(), "coconut", {"metrics": {"x": 1}})
    ck = load_bfs_checkpoint(tmp_path / "m.json")
    assert ck.method == "coconut" and ck.meta["metrics"] == {"x": 1} and ck.graph == GraphConfig()
    for k, v in m.state_dict().items():
        assert torch.equal(v, ck.model.state_dict()[k])
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temp files
    json.loads((tmp_path / "m.json").read_text())


def test_missing_checkpoint_names_the_choices(tmp_path):
    with pytest.raises(FileNotFoundError, match="shipped names"):
        load_bfs_checkpoint(tmp_path / "nothing")
