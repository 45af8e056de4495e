"""Experiment tracking: the trainer's callbacks get exactly the train_log.jsonl records, the W&B logger
sends them to an offline wandb run (WANDB_MODE=offline, a temp dir), and a missing wandb is one line."""

from __future__ import annotations

import builtins
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from superscope.saes import SAEConfig, TrainConfig, train

REPO = Path(__file__).resolve().parents[3]


def _batches(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        yield torch.randn(64, 16, generator=g)


def _small():
    return (SAEConfig(architecture="topk", d_in=16, d_sae=32, k=4),
            TrainConfig(total_tokens=64 * 6, batch_size=64, log_every=2, progress=False))


def test_callbacks_get_the_train_log_records(tmp_path):
    cfg, tc = _small()
    seen: list[dict] = []
    train(cfg, _batches(6), tc, out_dir=tmp_path / "sae", callbacks=[seen.append])
    logged = [json.loads(line) for line in (tmp_path / "sae" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in seen] == [2, 4, 6] and seen == logged
    without_folder: list[dict] = []  # no out_dir: the records still reach the callbacks
    train(cfg, _batches(6), tc, callbacks=[without_folder.append])
    assert [r["step"] for r in without_folder] == [2, 4, 6]
    assert [r["fvu"] for r in without_folder] == pytest.approx([r["fvu"] for r in seen])


def test_wandb_logger_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from superscope.analyses.runs.wandb_logger import WandbLogger
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.chdir(tmp_path)
    cfg, tc = _small()
    logger = WandbLogger("superscope-test", "topk", config={"k": 4}, dir=tmp_path / "wb")
    sent: list[tuple[dict, int]] = []
    real_log = logger.run.log
    monkeypatch.setattr(logger.run, "log", lambda values, step=None: (sent.append((values, step)),
                                                                       real_log(values, step=step)))
    try:
        train(cfg, _batches(6), tc, out_dir=tmp_path / "sae", callbacks=[logger])
        assert logger.run.offline and dict(logger.run.config) == {"k": 4}
    finally:
        logger.finish()
    logged = [json.loads(line) for line in (tmp_path / "sae" / "train_log.jsonl").read_text().splitlines()]
    assert logger.logged == len(logged) == 3
    assert [step for _, step in sent] == [r["step"] for r in logged]
    assert [values for values, _ in sent] == [{k: v for k, v in r.items() if k != "step"} for r in logged]
    runs = list((tmp_path / "wb" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1 and runs[0].stat().st_size > 0  # written for `wandb sync`, no network used


def test_missing_wandb_is_one_line(monkeypatch):
    from superscope.analyses.runs import wandb_logger
    real_import = builtins.__import__

    def no_wandb(name, *args, **kwargs):
        if name == "wandb" or name.startswith("wandb."):
            raise ImportError("No module named 'wandb'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_wandb)
    monkeypatch.delitem(sys.modules, "wandb", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'superscope\[wandb\]'"):
        wandb_logger.logger_factory("p", None, None)


def test_saes_never_imports_wandb():
    hits = [str(p) for p in (REPO / "saes").rglob("*.py") if "wandb" in p.read_text()]
    assert hits == []
    code = "import sys, superscope.saes.trainer; print('wandb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "False"


def test_superscope_train_with_wandb_offline(tmp_path, monkeypatch, capsys):
    """`superscope train --wandb` on a toy run's activations: an offline W&B run beside train_log.jsonl."""
    pytest.importorskip("wandb")
    from superscope.analyses.cli import main
    from superscope.analyses.runs.toy import HOOKS, toy_rows, write_heldout
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.chdir(tmp_path)
    shards = tmp_path / "acts" / HOOKS[0]
    write_heldout(shards, HOOKS[0], toy_rows(80, 0, seed=0))  # a small shard folder (1,200 rows)
    out = tmp_path / "sae"
    code = main(["train", "--activations", str(shards), "--out", str(out),
                 "--architecture", "topk", "--d-sae", "32", "--k", "4", "--total-tokens", "1024",
                 "--batch-size", "256", "--log-every", "1", "--progress", "false", "--wandb",
                 "--wandb-project", "superscope-test"])
    assert code in (0, None), capsys.readouterr().err
    assert len((out / "train_log.jsonl").read_text().splitlines()) == 4
    assert len(list((out / "wandb").glob("offline-run-*/run-*.wandb"))) == 1
