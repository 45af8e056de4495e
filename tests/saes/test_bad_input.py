"""Bad input to the SAE core gives one clear error."""

import json

import pytest
import torch

from superscope.saes import SAEConfig, load_sae

from .conftest import make_sae


def test_wrong_d_in():
    with pytest.raises(ValueError, match=r"d_in"):
        make_sae("topk")(torch.randn(4, 13))


def test_non_float_input():
    with pytest.raises(TypeError, match="floating-point"):
        make_sae("topk")(torch.ones(4, 12, dtype=torch.int64))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_inf_input(bad):
    x = torch.randn(4, 12)
    x[2, 3] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        make_sae("mutual_choice")(x)


@pytest.mark.parametrize("k", [48, 100, 0, -1])
def test_absurd_k(k):
    with pytest.raises(ValueError, match="k must satisfy"):
        SAEConfig(d_in=12, d_sae=48, k=k)


def test_unknown_architecture():
    with pytest.raises(ValueError, match="unknown SAE architecture"):
        SAEConfig(architecture="gated", d_in=12, d_sae=48, k=4)


def test_cfg_from_another_architecture(tmp_path):
    make_sae("topk").save(tmp_path)
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    cfg["architecture"] = "feature_choice"
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="another architecture"):
        load_sae(tmp_path)


def test_cfg_from_a_newer_version(tmp_path):
    make_sae("topk").save(tmp_path)
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    cfg["format_version"] = 99
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="newer than this superscope"):
        load_sae(tmp_path)


def test_foreign_cfg(tmp_path):
    (tmp_path / "cfg.json").write_text(json.dumps({"architecture": "topk", "d_in": 12}))
    with pytest.raises(ValueError, match="not a superscope SAE config"):
        load_sae(tmp_path)


def test_truncated_safetensors(tmp_path):
    make_sae("topk").save(tmp_path)
    data = (tmp_path / "sae.safetensors").read_bytes()
    (tmp_path / "sae.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_sae(tmp_path)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="SAE folder not found"):
        load_sae(tmp_path / "nope")


def test_mismatched_shapes(tmp_path):
    make_sae("topk", d_sae=48).save(tmp_path)
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    cfg["d_sae"] = 64
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="do not belong together"):
        load_sae(tmp_path)
