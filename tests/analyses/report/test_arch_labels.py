"""Every registered SAE architecture has a label, a colour and a place in the order wherever the report
and the dashboard show architectures (BatchTopK was spelt ``batch_topk`` in a table of the report while
the registry says ``batchtopk``, so it was shown unlabelled and grey). The facts live on the variant
class (saes/registry.py); the report and dashboard ask the registry, so a newly registered variant is
labelled and coloured everywhere — and one registered without a label or colour fails on the spot."""

from __future__ import annotations

import json
import re

import pytest

from superscope.analyses.report import ReportConfig, build_report
from superscope.analyses.report import sae_sections as S
from superscope.analyses.runs.data import arch_key, load_run
from superscope.analyses.runs.folder import RunFolder
from superscope.saes import SAEConfig, create_sae, registry, save_sae
from superscope.saes.registry import arch_color, arch_label, arch_order, known_architectures, register
from superscope.saes.topk import TopKSAE

REGISTERED = known_architectures()
HOOK = "blocks.1.hook_resid_post"
DUMMY = ("dummy_variant", "Dummy Variant", "#123456")


@pytest.mark.parametrize("arch", REGISTERED)
def test_every_registered_architecture_has_a_label_colour_and_order(arch):
    assert arch_label(arch) != arch
    assert re.fullmatch(r"#[0-9a-f]{6}", arch_color(arch))
    assert arch in arch_order() and arch_key(arch)[0] < len(arch_order())


def test_labels_and_colours_are_distinct_and_unregistered_names_stay_readable():
    assert len({arch_label(a) for a in REGISTERED}) == len({arch_color(a) for a in REGISTERED}) == len(REGISTERED)
    assert arch_label("gated") == "gated" and arch_color("gated") == registry.UNREGISTERED_COLOR
    assert arch_key("gated")[0] == len(arch_order())  # an old run's unknown variant sorts last
    import superscope.analyses.runs.data as report_data
    assert not hasattr(report_data, "ARCH_LABEL") and not hasattr(report_data, "ARCH_COLOR")  # no second table


@pytest.fixture
def dummy(monkeypatch):
    """A variant registered for this test only (a TopK under another name)."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @register(DUMMY[0])
    class DummySAE(TopKSAE):
        label, color, order = DUMMY[1], DUMMY[2], 99

    return DummySAE.architecture


def test_a_new_variant_without_a_label_or_colour_fails_loudly(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    with pytest.raises(ValueError, match="label 'TopK' of 'topk'"):
        @register("unlabelled")
        class Unlabelled(TopKSAE):  # inherits TopK's label and colour
            pass

    with pytest.raises(ValueError, match="color '#1f77b4' of 'topk'"):
        @register("uncoloured")
        class Uncoloured(TopKSAE):
            label = "Uncoloured"
    assert "unlabelled" not in known_architectures() and "uncoloured" not in known_architectures()


def _run_with_every_architecture(root):
    """A run folder with one (untrained) SAE and made-up metrics per registered architecture."""
    run = RunFolder(root)
    run.write({"name": root.name, "main_hook": HOOK, "hooks": [HOOK], "archs": list(arch_order())})
    for i, arch in enumerate(arch_order()):
        folder = run.sae(HOOK, arch)
        save_sae(create_sae(SAEConfig(architecture=arch, d_in=8, d_sae=16, k=2, hook_name=HOOK)), folder)
        ev = {"fvu": 0.2 + 0.01 * i, "l0_mean": 2.0, "l0_std": 0.5, "l0_hist": [0, 3, 5, 2], "dead_frac": 0.1,
              "dense_frac": 0.0, "n_tokens": 10, "log_density_edges": [-3, -2, -1], "log_density_hist": [4, 6]}
        (folder / "metrics.json").write_text(json.dumps({"hook": HOOK, "architecture": arch, "eval": ev}))
        (folder / "train_log.jsonl").write_text(json.dumps({"tokens": 100, "fvu": 0.5}) + "\n")
    return root


def test_every_architecture_renders_in_the_report(dummy, tmp_path):
    root = _run_with_every_architecture(tmp_path / "every")
    data = load_run(root)
    assert [e.arch for e in data.at(HOOK)] == list(arch_order()) and arch_order()[-1] == dummy
    assert [r["architecture"] for r in S.comparison_rows(data, HOOK)] == [arch_label(a) for a in arch_order()]
    bars = S.metrics_figure(data, HOOK).data[0]
    assert list(bars.x) == [arch_label(a) for a in arch_order()]
    assert list(bars.marker.color) == [arch_color(a) for a in arch_order()]
    for fig in (S.l0_figure(data, HOOK), S.density_figure(data, HOOK), S.training_figure(data, HOOK)):
        shown = {(t.name, (t.marker.color if t.type == "bar" else t.line.color)) for t in fig.data}
        assert {(arch_label(a), arch_color(a)) for a in arch_order()} <= shown
    html, _ = build_report(root, ReportConfig(difficulty_tokens=16, n_feature_cards=0))
    saes_section = html.split("<section id='saes'>")[1].split("</section>")[0]
    for arch in arch_order():
        assert f"<td>{arch_label(arch)}</td>" in saes_section and arch_color(arch) in saes_section, arch


def test_every_architecture_renders_in_the_dashboard(dummy, tmp_path, monkeypatch):
    pytest.importorskip("streamlit")
    from tests.dashboards.conftest import open_page, problems

    _run_with_every_architecture(tmp_path / "every")
    monkeypatch.setenv("SUPERSCOPE_RUNS_ROOT", str(tmp_path))
    monkeypatch.setenv("SUPERSCOPE_RUN", "every")
    at = open_page("compare")
    assert problems(at) == []
    assert list(at.dataframe[0].value["SAE"]) == [arch_label(a) for a in arch_order()]  # one row each, in order
