"""The dashboard's Steering page in Streamlit's AppTest on a tiny run with a real (tiny) model: a deep link
selects the latent, Steer shows both continuations, the KL strip and the dose-response figure and saves the
result; a NaN α and an unknown latent show one error line each, never a traceback."""

from __future__ import annotations

import json

import pytest

from tests.dashboards.conftest import open_page, problems
from tests.interventions.steer_run import HOOK, build_steer_run


@pytest.fixture(scope="module")
def steer_root(tmp_path_factory):
    return build_steer_run(tmp_path_factory.mktemp("steer_page")).parent


def _fill(at, latent: int, alpha: str):
    at.number_input(key="steer_latent").set_value(latent)
    at.text_input(key="steer_alpha").input(alpha)
    at.number_input(key="steer_tokens").set_value(6)
    at.number_input(key="steer_contexts").set_value(4)
    at.text_input(key="steer_sweep").input("0 10 20")
    return next(b for b in at.button if b.label == "Steer")


def test_steering_page_runs_an_edit(steer_root, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.dashboards.conftest import APP
    monkeypatch.setenv("SUPERSCOPE_RUNS_ROOT", str(steer_root))
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params.update({"run": "steer", "hook": HOOK, "arch": "topk", "latent": "5"})
    at.run()
    at.switch_page("views/steering.py").run()
    assert problems(at) == [] and [t.value for t in at.title] == ["Steering"]
    assert at.number_input(key="steer_latent").value == 5  # the feature browser's link
    at.checkbox(key="steer_save").check().run()
    _fill(at, 3, "20").click().run()
    assert problems(at) == []
    html = " ".join(h.proto.body for h in at.get("html"))
    assert html.count("<b>Unsteered</b>") == html.count("<b>Steered</b>") == 2  # this run's result, and the saved one
    assert "background ∝ KL" in html and "class='tok'" in html
    assert len(at.get("plotly_chart")) >= 1
    saved = json.loads((steer_root / "steer" / "steering" / "topk_f3_add20.json").read_text())
    assert saved["dose"]["values"] == [0.0, 10.0, 20.0]
    assert any(s.value == "Saved results" for s in at.subheader)


@pytest.mark.parametrize(("latent", "alpha", "message"), [(3, "nan", "must be finite"),
                                                          (999, "8", "latent 999 out of range")])
def test_steering_page_bad_input_is_one_message(steer_root, monkeypatch, latent, alpha, message):
    monkeypatch.setenv("SUPERSCOPE_RUNS_ROOT", str(steer_root))
    at = open_page("steering", timeout=300)
    _fill(at, latent, alpha).click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and message in errors[0] and "\n" not in errors[0]
