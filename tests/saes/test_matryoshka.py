"""Matryoshka SAEs (saes/matryoshka.py): the prefix loss composes with every selection rule, equals the
dense definition (values and gradients through the whole SAE), keeps the latent order at save / load, and
makes the inner latents a working SAE on their own."""

from __future__ import annotations

import pytest
import torch

from superscope.activations.toy import ToyConfig, ToySource
from superscope.kernels.prefix_losses import prefix_fvus
from superscope.saes import SAEConfig, TrainConfig, create_sae, load_sae, train
from superscope.saes.config import default_prefixes
from superscope.saes.losses import normalized_mse, reconstruction_loss
from superscope.saes.matryoshka import matryoshka_fvus
from superscope.saes.registry import sae_class

NESTED = ["matryoshka_topk", "matryoshka_batchtopk", "matryoshka_mutual_choice", "matryoshka_feature_choice"]


def _sae(arch: str, **kw):
    sae = create_sae(SAEConfig(architecture=arch, d_in=12, d_sae=48, k=4, **kw))
    sae.reset_parameters(0)
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.1)
        sae.b_dec.normal_(0, 0.1)
    return sae


def _dense_loss(sae, out):
    """Σ_l w_l·FVU(x, z[:, :F_l]·W_dec[:F_l] + b_dec) from the dense codes: the definition."""
    z = out.codes.to_dense()
    total = 0
    for end, w in zip(sae.cfg.matryoshka_prefixes, sae.cfg.matryoshka_loss_weights):
        total = total + w * normalized_mse(out.x_scaled, z[:, :end] @ sae.W_dec[:end] + sae.b_dec)
    return total


def test_default_prefixes():
    assert default_prefixes(4608) == [288, 576, 1152, 2304, 4608]
    assert SAEConfig(architecture="matryoshka_batchtopk", d_in=12, d_sae=48, k=4).matryoshka_prefixes == [3, 6, 12, 24, 48]
    assert SAEConfig(architecture="batchtopk", d_in=12, d_sae=48, k=4).matryoshka_prefixes is None


@pytest.mark.parametrize("arch", NESTED)
def test_prefix_loss_equals_dense_definition_through_the_sae(arch):
    """Same selected codes, restricted per prefix: the loss and the gradient of every parameter match."""
    sae = _sae(arch, matryoshka_weights=[1.0, 0.5, 2.0, 1.0, 3.0])
    sae.train()
    x = torch.randn(40, 12, generator=torch.Generator().manual_seed(3)) * 2
    out = sae(x)
    loss = reconstruction_loss(sae, out)
    grads = torch.autograd.grad(loss, list(sae.parameters()))
    out_ref = sae(x)
    assert torch.equal(out.codes.cols_N, out_ref.codes.cols_N)
    ref = _dense_loss(sae, out_ref)
    grads_ref = torch.autograd.grad(ref, list(sae.parameters()))
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)
    for (name, _), g, g_ref in zip(sae.named_parameters(), grads, grads_ref):
        torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-6, msg=name)
    # the last prefix is the whole dictionary: its FVU is the SAE's plain FVU
    torch.testing.assert_close(matryoshka_fvus(sae, out)[-1], normalized_mse(out.x_scaled, out.x_hat_scaled))


@pytest.mark.parametrize("arch", NESTED)
def test_selection_is_the_flat_variants(arch):
    """Matryoshka changes the loss only: the codes are the flat variant's on the same weights."""
    nested = _sae(arch)
    flat = create_sae(SAEConfig(architecture=arch.removeprefix("matryoshka_"), d_in=12, d_sae=48, k=4))
    flat.load_state_dict(nested.state_dict())
    assert isinstance(nested, type(flat)) and nested.batch_dependent == flat.batch_dependent
    assert sae_class(arch).global_rule is sae_class(flat.cfg.architecture).global_rule
    x = torch.randn(30, 12)
    nested.train(), flat.train()
    a, b = nested(x).codes, flat(x).codes
    assert torch.equal(a.crow_B1, b.crow_B1) and torch.equal(a.cols_N, b.cols_N)
    torch.testing.assert_close(a.values_N, b.values_N)


def test_any_architecture_through_the_option(tmp_path):
    """A flat name with cfg.matryoshka_prefixes trains on the prefix loss (logged as rec beside the FVU)."""
    import json

    gen = torch.Generator().manual_seed(0)
    batches = [torch.randn(32, 12, generator=gen) for _ in range(4)]
    cfg = SAEConfig(architecture="feature_choice", d_in=12, d_sae=48, k=4, matryoshka_prefixes=[12, 48])
    train(cfg, batches, TrainConfig(total_tokens=128, batch_size=32, progress=False, log_every=1), out_dir=tmp_path)
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert all("rec" in r and r["rec"] > r["fvu"] for r in log)  # two prefixes: rec = FVU_12 + FVU_48 > FVU_48
    assert load_sae(tmp_path).cfg.matryoshka_prefixes == [12, 48]


@pytest.mark.parametrize("kw, match", [
    (dict(matryoshka_prefixes=[12, 40]), "ending at d_sae=48"),
    (dict(matryoshka_prefixes=[24, 12, 48]), "strictly increasing"),
    (dict(matryoshka_prefixes=[0, 48]), "strictly increasing"),
    (dict(matryoshka_prefixes=[12, 48], matryoshka_weights=[1.0]), "2 non-negative numbers"),
    (dict(matryoshka_weights=[1.0]), "without matryoshka_prefixes"),
])
def test_bad_prefixes_are_one_clear_error(kw, match):
    with pytest.raises(ValueError, match=match):
        SAEConfig(architecture="batchtopk", d_in=12, d_sae=48, k=4, **kw)


@pytest.mark.parametrize("arch", NESTED)
def test_latent_order_preserved_at_save_load(arch, tmp_path):
    gen = torch.Generator().manual_seed(1)
    batches = [torch.randn(32, 12, generator=gen) * 3 for _ in range(4)]
    sae = train(_sae(arch).cfg, batches, TrainConfig(total_tokens=128, batch_size=32, progress=False, lr=1e-2))
    sae.save(tmp_path / "sae")
    loaded = load_sae(tmp_path / "sae")
    assert type(loaded) is type(sae) and loaded.cfg.matryoshka_prefixes == sae.cfg.matryoshka_prefixes
    assert torch.equal(loaded.W_dec, sae.W_dec) and torch.equal(loaded.W_enc, sae.W_enc)
    x = torch.randn(20, 12)
    sae.eval(), loaded.eval()
    torch.testing.assert_close(matryoshka_fvus(loaded, loaded(x)), matryoshka_fvus(sae, sae(x)))


@pytest.mark.slow
def test_inner_prefix_reconstructs_alone_unlike_flat():
    """The point of the objective: after the same training, the first F/8 latents of a Matryoshka SAE explain
    more variance than the first F/8 of the flat SAE (whose latent order means nothing). Measured: inner FVU
    0.295 vs 0.386 (full: 0.164 vs 0.199)."""
    source = ToySource(ToyConfig(d=32, n_features=128, mean_active=4, zipf_exponent=1.5, seed=0))
    batches = list(source.batches(256, 60, seed=1))
    tc = TrainConfig(total_tokens=256 * 60, batch_size=256, progress=False, lr=3e-3, seed=0)
    inner = {}
    for arch, prefixes in (("batchtopk", None), ("matryoshka_batchtopk", [16, 32, 64, 128])):
        sae = train(SAEConfig(architecture=arch, d_in=32, d_sae=128, k=4, matryoshka_prefixes=prefixes), batches, tc)
        sae.train()  # batch selection, as trained
        with torch.no_grad():
            out = sae(next(iter(source.batches(1024, 1, seed=99))))
            c = out.codes
            inner[arch] = prefix_fvus(c.values_N, c.crow_B1, c.cols_N, sae.W_dec, sae.b_dec, out.x_scaled, (16, 32, 64, 128))
    assert inner["matryoshka_batchtopk"][0] < 0.85 * inner["batchtopk"][0], inner
    assert inner["matryoshka_batchtopk"][-1] < 0.25, inner


# ---- SAELens interop: Matryoshka-BatchTopK as SAELens stores it (a JumpReLU with the global threshold) ----

def _trained_matryoshka_batchtopk():
    sae = _sae("matryoshka_batchtopk", input_scale=0.6)
    sae.theta.fill_(0.3)
    sae.eval()
    return sae


def test_export_matryoshka_batchtopk_loads_in_sae_lens_as_jumprelu(tmp_path):
    import json

    from sae_lens import SAE

    from superscope.saes.interop import export_saelens, import_saelens

    sae = _trained_matryoshka_batchtopk()
    sae.cfg.inference_mode = "threshold"
    export_saelens(sae, tmp_path)
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    assert cfg["architecture"] == "jumprelu"
    assert cfg["metadata"]["training_architecture"] == "matryoshka_batchtopk"
    assert cfg["metadata"]["training_architecture_details"]["matryoshka_widths"] == [3, 6, 12, 24, 48]
    loaded = SAE.load_from_disk(tmp_path)
    x = torch.randn(25, 12, generator=torch.Generator().manual_seed(5)) * 2
    torch.testing.assert_close(loaded.encode(x), sae.encode(x), atol=1e-5, rtol=1e-5)
    back = import_saelens(tmp_path)
    assert type(back) is type(sae) and back.cfg.matryoshka_prefixes == sae.cfg.matryoshka_prefixes
    assert back.cfg.inference_mode == "threshold" and back.cfg.k == sae.cfg.k
    torch.testing.assert_close(back.encode(x), sae.encode(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(back.encode(x), loaded.encode(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["batchtopk", "matryoshka_batchtopk"])
def test_import_sae_lens_training_and_inference_folders(name, tmp_path):
    """A SAELens-trained (here: randomly initialised, non-unit decoder norms, a set threshold) BatchTopK /
    Matryoshka-BatchTopK: its training folder imports in batch mode with SAELens' codes, its inference folder
    (jumprelu) in threshold mode with the JumpReLU's codes."""
    import sae_lens
    from sae_lens import SAE

    from superscope.saes.interop import import_saelens

    cls, cfg_cls = {"batchtopk": (sae_lens.BatchTopKTrainingSAE, sae_lens.BatchTopKTrainingSAEConfig),
                    "matryoshka_batchtopk": (sae_lens.MatryoshkaBatchTopKTrainingSAE,
                                             sae_lens.MatryoshkaBatchTopKTrainingSAEConfig)}[name]
    extra = {"matryoshka_widths": [6, 12, 24, 48]} if name == "matryoshka_batchtopk" else {}
    torch.manual_seed(0)
    theirs = cls(cfg_cls(d_in=12, d_sae=48, k=4, device="cpu", **extra))
    with torch.no_grad():
        theirs.W_dec.mul_(torch.rand(48, 1) + 0.5)
        theirs.b_enc.normal_(0, 0.05)
        theirs.b_dec.normal_(0, 0.1)
        theirs.topk_threshold.fill_(0.02)
    theirs.save_model(tmp_path / "train")
    theirs.save_inference_model(tmp_path / "infer")
    x = torch.randn(50, 12, generator=torch.Generator().manual_seed(2))

    ours = import_saelens(tmp_path / "train")
    assert ours.cfg.architecture == name and ours.cfg.inference_mode == "batch" and ours.cfg.k == 4
    assert ours.cfg.matryoshka_prefixes == extra.get("matryoshka_widths")
    with torch.no_grad():
        z_theirs = theirs.encode(x)
        z_ours = ours.encode(x)
    assert int((z_ours > 0).sum()) == int((z_theirs > 0).sum()) > 0
    torch.testing.assert_close(z_ours, z_theirs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.decode(z_ours), theirs.decode(z_theirs), atol=1e-5, rtol=1e-5)

    inference = SAE.load_from_disk(tmp_path / "infer")
    ours = import_saelens(tmp_path / "infer")
    assert ours.cfg.architecture == name and ours.cfg.inference_mode == "threshold"
    with torch.no_grad():
        z_theirs = inference.encode(x)
    assert int((z_theirs > 0).sum()) > 0
    torch.testing.assert_close(ours.encode(x), z_theirs, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_matryoshka_absorbs_less_on_the_hierarchical_toy():
    """Parents fire whenever a child fires: the flat BatchTopK folds the parent into its children's latents
    (the parent's latent is silent on child firings) far more often than Matryoshka-BatchTopK, whose inner
    prefix must reconstruct the parent alone. Measured (this deterministic case): 0.079 vs 0.023."""
    from superscope.activations.hierarchical_toy import (
        HierarchicalToyConfig,
        HierarchicalToySource,
        absorption_rate,
    )

    source = HierarchicalToySource(HierarchicalToyConfig(d=16, n_parents=8, children=4, seed=0))
    test = source.sample(4096, torch.Generator().manual_seed(99))
    tc = TrainConfig(total_tokens=256 * 150, batch_size=256, progress=False, lr=1e-2, aux_coef=0.25,
                     dead_tokens=5000, seed=0)
    result = {}
    for arch, prefixes in (("batchtopk", None), ("matryoshka_batchtopk", [8, 16, 32, 64])):
        sae = train(SAEConfig(architecture=arch, d_in=16, d_sae=64, k=3, matryoshka_prefixes=prefixes),
                    source.batches(256, seed=1), tc)
        sae.eval()
        result[arch] = absorption_rate(sae, source.parent_directions, test)
    assert result["matryoshka_batchtopk"].rate < 0.5 * result["batchtopk"].rate, result
    assert result["matryoshka_batchtopk"].parent_alone_recall > 0.9, result  # its parent latent is a real one


def test_a_finished_run_gains_matryoshka_without_retraining(tmp_path):
    """The default run's middle layer gains matryoshka_batchtopk and jumprelu (RunConfig.main_archs): a run
    folder made before (archs only, no main_archs) reopens train / evaluate / evals / report for them alone;
    another config change is still refused."""
    import json

    from superscope.analyses.pipeline.config import RunConfig
    from superscope.analyses.pipeline.main_job import Pipeline, added_architectures

    new = RunConfig(run_dir=str(tmp_path))
    old = {k: v for k, v in new.to_dict().items() if k != "main_archs"}
    assert added_architectures(old, new.to_dict()) == ["matryoshka_batchtopk", "jumprelu"]
    assert added_architectures(new.to_dict(), new.to_dict()) == []
    assert added_architectures({**old, "k": 16}, new.to_dict()) is None
    assert added_architectures({**old, "archs": ["topk"]}, new.to_dict()) is None
    steps = {s: {"done": True} for s in ("harvest", "train", "evaluate", "sweep", "probes", "evals", "report")}
    (tmp_path / "run.json").write_text(json.dumps({"format": "superscope.run", "config": old, "archs": old["archs"],
                                                   "steps": steps}))
    Pipeline(new, log=lambda _: None).start()
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["archs"] == ["topk", "feature_choice", "mutual_choice", "matryoshka_batchtopk", "jumprelu"]
    reopened = {s for s, v in run["steps"].items() if not v["done"]}
    assert reopened == {"train", "evaluate", "evals", "report"}
    assert run["steps"]["train"]["reopened_for"] == ["matryoshka_batchtopk", "jumprelu"]
    with pytest.raises(ValueError, match="another configuration"):
        Pipeline(RunConfig(run_dir=str(tmp_path), k=16), log=lambda _: None).start()


def test_resume_gives_the_same_final_weights(tmp_path):
    """Checkpoint / resume through the same trainer (a batch-dependent rule with the prefix loss)."""
    from .test_trainer import _batches, _Crash, _crashing

    cfg = SAEConfig(architecture="matryoshka_mutual_choice", d_in=12, d_sae=48, k=4)
    tc = TrainConfig(total_tokens=12 * 32, batch_size=32, checkpoint_every_tokens=96, progress=False, dead_tokens=64)
    reference = train(cfg, _batches(), tc)
    with pytest.raises(_Crash):
        train(cfg, _crashing(_batches(), 7), tc, out_dir=tmp_path)
    resumed = train(cfg, _batches(), tc, out_dir=tmp_path)
    for (name, a), (_, b) in zip(reference.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    assert load_sae(tmp_path).cfg.matryoshka_prefixes == [3, 6, 12, 24, 48]


@pytest.mark.slow
def test_torchrun_two_ranks_match_one_process(tmp_path):
    """Data-parallel (torchrun, 2 ranks, gloo): the prefix losses share the FVU denominator, so the trainer's
    per-rank loss scaling stays exact; weights equal a single process's to float noise."""
    from superscope.analyses.cli.torchrun_train import global_batches

    from .test_distributed import ARGV, NOISE, _configs, _max_diff, _torchrun

    archs = ["matryoshka_batchtopk", "matryoshka_feature_choice"]
    argv = ["--arch", *archs, *ARGV[ARGV.index("--toy-d"):]]  # the module's toy, budget and checkpoints
    _torchrun(argv, tmp_path)
    for arch in archs:
        cfg, tc, launch = _configs(arch, tuple(argv))
        single = train(cfg, global_batches(launch, tc)[0], tc)
        diffs = _max_diff(single, load_sae(tmp_path / arch))
        assert max(diffs.values()) < NOISE, (arch, diffs)
