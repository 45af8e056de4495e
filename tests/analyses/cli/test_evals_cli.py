"""`superscope evals` on the tiny run: the results and the printed table, and one clear line for each bad input."""

from __future__ import annotations

import json
import shutil

import pytest

from superscope.analyses.cli import main
from tests.fixtures.tiny_run import ARCHS, HOOKS, copy_run, tiny_run

MAIN = HOOKS[-1]


@pytest.fixture
def run(tmp_path_factory, tmp_path):
    return copy_run(tiny_run(tmp_path_factory), tmp_path, "run")


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_evals_core_quick_writes_and_prints_the_table(run, capsys):
    shutil.rmtree(run / "evals")  # the toy run ships a small evals/ folder
    assert main(["evals", str(run), "--metrics", "core", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "3 written, 0 skipped, 0 failed" in out and "CE-loss recovered" in out and MAIN in out
    for arch in ARCHS:
        doc = json.loads((run / "evals" / MAIN / arch / "core.json").read_text())
        assert doc["suite"]["quick"] is True
    assert main(["evals", str(run), "--metrics", "core", "--quick"]) == 0
    assert "0 written, 3 skipped" in capsys.readouterr().out


@pytest.mark.parametrize("argv, expected", [
    (["evals"], "give a run folder (RUN_DIR) or SAE folders"),
    (["evals", "{tmp}/nowhere"], "is not a superscope run folder"),
    (["evals", "{run}", "--metrics", "nope"], "unknown metrics ['nope']"),
    (["evals", "{run}", "--hooks", "blocks.7.hook_resid_post"], "no SAEs at hooks ['blocks.7.hook_resid_post']"),
    (["evals", "--sae", "{tmp}/nowhere"], "SAE folder not found"),
    (["evals", "--sae", "{run}/saes/" + MAIN + "/topk", "--sweep"], "--sweep trains on a run's cached activations"),
])
def test_bad_input_is_one_line(run, tmp_path, capsys, argv, expected):
    argv = [a.format(run=run, tmp=tmp_path) for a in argv]
    assert main(argv) == 1
    line = error_line(capsys)
    assert line.startswith("superscope evals: error:") and expected in line


def test_sae_of_another_width_is_one_line(run, tmp_path, capsys):
    from superscope.saes import SAEConfig, create_sae, save_sae

    folder = save_sae(create_sae(SAEConfig(architecture="topk", d_in=12, d_sae=48, k=2, hook_name=MAIN)),
                      tmp_path / "other")
    assert main(["evals", str(run), "--sae", str(folder), "--metrics", "core"]) == 1
    assert "d_in=12 but the held-out activations" in error_line(capsys)
    assert not (run / "evals" / MAIN / "other").exists()
