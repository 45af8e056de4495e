"""`superscope probe …` on a small run folder (real shards and a saved SAE), and its errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from superscope.activations.shards import ShardWriter
from superscope.analyses.cli import probe as cmd_probe
from superscope.saes import SAEConfig, create_sae, save_sae

HOOK, D, F, T = "blocks.1.hook_resid_post", 8, 32, 16


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="superscope")
    cmd_probe.register(parser.add_subparsers(dest="command"))
    return parser


def _run(argv: list[str]) -> None:
    args = _parser().parse_args(argv)
    args.func(args)


def _write_shards(folder: Path, n_contexts: int = 12) -> None:
    gen = torch.Generator().manual_seed(0)
    contexts = torch.randint(0, 50, (n_contexts, T), generator=gen)
    writer = ShardWriter(folder, {"hook": HOOK, "d": D, "context_len": T, "dtype": "float32",
                                   "contexts_per_shard": n_contexts})
    rows = n_contexts * T
    writer.write(0, 0, {"acts": torch.randn(rows, D, generator=gen), "token_ids": contexts.reshape(-1),
                        "positions": torch.arange(T).repeat(n_contexts),
                        "context_ids": torch.arange(n_contexts).repeat_interleave(T), "contexts": contexts})
    writer.finish()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    root = tmp_path / "runs" / "tiny"
    _write_shards(root / "heldout" / HOOK)
    for arch in ("topk", "batchtopk"):
        save_sae(create_sae(SAEConfig(architecture=arch, d_in=D, d_sae=F, k=3)), root / "saes" / HOOK / arch)
    return root


def test_entropy_on_a_run_writes_one_result_per_sae(run_dir: Path, capsys):
    _run(["probe", "entropy", "--run", str(run_dir), "--n-bootstrap", "20", "--batch-size", "64"])
    data = json.loads((run_dir / "probes" / "superposition_entropy.json").read_text())
    assert {(r["hook"], r["architecture"]) for r in data["results"]} == {(HOOK, "topk"), (HOOK, "batchtopk")}
    for r in data["results"]:
        assert 1 <= r["f_eff"] <= F and r["n_neurons"] == D and r["n_tokens"] == 12 * T
    assert "ψ" in capsys.readouterr().out
    assert not list((run_dir / "probes").glob(".*tmp"))  # atomic write left no temp file


def test_function_tokens_on_a_run(run_dir: Path):
    out = run_dir / "ft.json"
    _run(["probe", "function-tokens", "--run", str(run_dir), "--arch", "topk", "--out", str(out), "--top-k", "10"])
    data = json.loads(out.read_text())
    graph = data["graphs"][HOOK]
    assert data["architecture"] == "topk" and graph["n_occurrences"] == 12 * T
    assert len(graph["coverage"]) == 10 and "coverage_table" in data


def test_a_run_without_the_sae_or_activations_is_a_clear_error(run_dir: Path, tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no SAE at .*mutual_choice"):
        _run(["probe", "entropy", "--run", str(run_dir), "--hook", HOOK, "--arch", "mutual_choice"])
    empty = tmp_path / "runs" / "empty"
    empty.mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no trained SAE"):
        _run(["probe", "function-tokens", "--run", str(empty)])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _run(["probe", "entropy", "--run", str(tmp_path / "nope")])
    no_acts = tmp_path / "runs" / "no_acts"
    save_sae(create_sae(SAEConfig(architecture="topk", d_in=D, d_sae=F, k=3)), no_acts / "saes" / HOOK / "topk")
    with pytest.raises(FileNotFoundError, match="no activations for"):
        _run(["probe", "entropy", "--run", str(no_acts)])


def test_toy_probes_need_an_output(tmp_path: Path):
    with pytest.raises(ValueError, match="--run runs/<name> or --out"):
        _run(["probe", "scaling-toy", "--preset", "quick"])
    out = tmp_path / "scaling.json"
    _run(["probe", "scaling-toy", "--preset", "quick", "--out", str(out)])
    assert json.loads(out.read_text())["probe"] == "scaling-toy"
