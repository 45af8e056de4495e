"""The `superscope` command: help is generated from the config dataclasses; errors are one line."""

import pytest

from superscope.analyses.cli import build_parser, main


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("run", "cache", "train", "eval", "export"):
        assert cmd in out


def test_run_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "--train-tokens" in out and "Training tokens for each middle-layer SAE" in out
    assert "{auxk,zipf,none}" in out


def test_train_options_come_from_sae_and_train_configs():
    args = build_parser().parse_args(["train", "--activations", "x", "--architecture", "feature_choice",
                                      "--capacity-mode", "zipf", "--lr", "none", "--adam-betas", "0.8", "0.99"])
    assert args.architecture == "feature_choice" and args.capacity_mode == "zipf"
    assert args.lr is None and args.adam_betas == [0.8, 0.99]


def test_bad_choice_is_rejected(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--architecture", "gated"])
    assert "invalid choice" in capsys.readouterr().err


def test_missing_activation_folder_is_one_line(tmp_path, capsys):
    code = main(["train", "--activations", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and "does not exist" in err and "Traceback" not in err


def test_eval_of_missing_sae_is_one_line(tmp_path, capsys):
    code = main(["eval", "--sae", str(tmp_path / "nope"), "--activations", str(tmp_path)])
    assert code == 1 and "SAE folder not found" in capsys.readouterr().err


def test_run_with_unknown_arch_is_one_line(tmp_path, capsys):
    code = main(["run", "--run-dir", str(tmp_path), "--archs", "topk", "gated"])
    assert code == 1 and "unknown architectures" in capsys.readouterr().err
