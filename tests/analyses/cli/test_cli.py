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


@pytest.mark.parametrize("argv, words", [
    (["bfs", "train", "--quiet", "flase"], ["--quiet", "expected true/false", "'flase'"]),
    (["probe", "function-tokens", "--run", "r", "--with-model", "yes please"], ["--with-model", "expected true/false"]),
    (["cache", "--rank", "1"], ["--rank and --world-size together"]),
    (["cache", "--rank", "3", "--world-size", "2"], ["--rank must be in [0, world size 2)"]),
    (["eval", "--sae", "x"], ["--sae and --activations are required"]),
    (["probe", "entropy"], ["--run runs/<name> is required"]),
])
def test_bad_values_get_one_clear_line(argv, words, capsys):
    """Every command is a config dataclass: argparse rejects a bad value of a typed field (a typo of a
    bool too), the dataclass's checks reject bad combinations; either way one line names the fix."""
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse: usage + one error line, exit 2
        code = stop.code
    assert code in (1, 2)
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and all(w in err[0] for w in words), err


def test_bare_bool_flag_is_true_and_explicit_false_is_false():
    from superscope.analyses.cli.options import from_args
    from superscope.analyses.runs.probes import FunctionTokensProbeConfig

    parser = build_parser()
    on = from_args(FunctionTokensProbeConfig, parser.parse_args(["probe", "function-tokens", "--run", "r", "--with-model"]))
    off = from_args(FunctionTokensProbeConfig, parser.parse_args(["probe", "function-tokens", "--run", "r",
                                                                  "--with-model", "false"]))
    assert on.with_model is True and off.with_model is False
