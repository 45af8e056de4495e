"""Export to SAELens' on-disk format loads in the installed sae_lens with the same codes; import back."""

import json

import pytest
import torch
from sae_lens import SAE

from superscope.saes.interop import export_saelens, import_saelens

from .conftest import make_sae


@pytest.mark.parametrize("arch", ["topk", "batchtopk", "mutual_choice", "feature_choice"])
def test_export_loads_in_sae_lens_with_same_codes(arch, tmp_path):
    sae = make_sae(arch, input_scale=0.6, inference_mode="threshold")
    buffers = dict(sae.named_buffers())
    if "theta_F" in buffers:
        buffers["theta_F"].uniform_(0.1, 0.5)
    elif "theta" in buffers:
        buffers["theta"].fill_(0.3)
    sae.eval()
    export_saelens(sae, tmp_path)
    loaded = SAE.load_from_disk(tmp_path)
    x = torch.randn(25, 12) * 2
    torch.testing.assert_close(loaded.encode(x), sae.encode(x), atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(loaded.decode(loaded.encode(x)), sae(x).x_hat, atol=1e-5, rtol=1e-5)
    back = import_saelens(tmp_path)
    torch.testing.assert_close(back.encode(x), sae.encode(x), atol=2e-6, rtol=1e-5)


def test_import_rejects_unknown_architecture(tmp_path):
    sae = make_sae("topk")
    export_saelens(sae, tmp_path)
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    cfg["architecture"] = "gated"
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="no superscope equivalent"):
        import_saelens(tmp_path)


def test_import_missing_folder_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="sae_id"):
        import_saelens(tmp_path / "absent")


def test_import_release_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="local folder"):
        import_saelens("gpt2-small-res-jb", "blocks.0.hook_resid_pre")
