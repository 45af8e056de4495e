"""`superscope steer` end to end on a tiny run (the tiny bridge, a TopK SAE, held-out contexts): the JSON +
HTML results, batch and --together modes, and one clear line per bad input."""

from __future__ import annotations

import json

import pytest

from superscope.analyses.cli import main
from superscope.kernels.threads import torch_threads
from tests.interventions.steer_run import HOOK, build_steer_run

FAST = ["--prompt", "Note 3: sparse", "--max-new-tokens", "6", "--contexts", "4", "--context-len", "8"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    with torch_threads(1):
        yield build_steer_run(tmp_path_factory.mktemp("steer_cli"))


def test_steer_writes_json_and_html_per_latent(run, capsys):
    with torch_threads(1):
        assert main(["steer", str(run), "--latent", "3", "5", "--alpha", "20", *FAST]) == 0
    out = capsys.readouterr().out
    for f in (3, 5):
        data = json.loads((run / "steering" / f"topk_f{f}_add20.json").read_text())
        assert data["format"] == "superscope.steering" and data["edits"] == [
            {"hook": HOOK, "latent": f, "op": "add", "value": 20.0}]
        g = data["generation"]
        assert len(g["steered_tokens"]) == 6 and len(g["kl_per_token"]) == 6
        assert data["cost"]["kl"] > 0 and 0 < data["cost"]["n_tokens"] <= 4 * 7  # BOS (= EOS here) positions left out
        assert len(data["dose"]["values"]) == 8 and data["dose"]["values"][-1] == 40.0
        page = (run / "steering" / f"topk_f{f}_add20.html").read_text()
        assert "Steered" in page and "plotly" in page.lower()
        assert f"topk_f{f}_add20" in out
    with torch_threads(1):
        assert main(["steer", str(run), "--latent", "3", "5", "--op", "clamp", "--alpha", "2", "--together", "true",
                     "--sweep", "0", "1", "2", *FAST]) == 0
    data = json.loads((run / "steering" / "topk_f3+5_clamp2.json").read_text())
    assert [e["latent"] for e in data["edits"]] == [3, 5] and data["dose"]["values"] == [0.0, 1.0, 2.0]
    # the last clamp is exact; the first is then moved by f5's decoder row (edits compose in order)
    assert data["cost"]["latents"][1]["after"] == pytest.approx(2.0, rel=1e-4)


def _bad_sae(run):
    from superscope.saes import SAEConfig, create_sae
    create_sae(SAEConfig(architecture="mutual_choice", d_in=16, d_sae=64, k=4, hook_name=HOOK)).save(
        run / "saes" / HOOK / "mutual_choice")


@pytest.mark.parametrize(("args", "message"), [
    (["--latent", "999"], "latent 999 out of range: the topk SAE at blocks.0.hook_resid_post has 64 latents"),
    (["--latent", "3", "--alpha", "nan"], "must be finite, got nan"),
    (["--latent", "3", "--hook", "blocks.9.hook_resid_post"], "no topk SAE at blocks.9.hook_resid_post"),
    (["--latent", "3", "--arch", "mutual_choice"], "expects d_in=16 but the model's activation there has shape [32]"),
    ([], "give at least one latent"),
    (["--latent", "3", "--target", "sparse autoencoders"], "give a single token"),
])
def test_bad_input_is_one_line(run, capsys, args, message):
    _bad_sae(run)
    with torch_threads(1):
        assert main(["steer", str(run), *args, *FAST]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("superscope steer: error:") and message in err


def test_not_a_run_folder(tmp_path, capsys):
    assert main(["steer", str(tmp_path), "--latent", "1"]) == 1
    assert "not a superscope run folder" in capsys.readouterr().err


def test_help_states_each_default_once(capsys):
    with pytest.raises(SystemExit):
        main(["steer", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Hook of the SAE (default: the run's main hook)." in text
    assert "main hook). (default: None)" not in text  # the field's own default line, not argparse's as well
    assert "(default: topk)" in text
