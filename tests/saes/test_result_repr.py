"""Short reprs and HTML tables of result dataclasses (issue 17, "In a notebook")."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil

import pytest
import torch

import superscope.probes
import superscope.saes
from superscope.saes import evaluate
from superscope.saes.model_metrics import SpliceMetrics
from superscope.saes.result_repr import ResultRepr, format_number, format_value

from .conftest import make_sae

# Dataclasses with to_dict that are inputs, not results: configurations and one generated BFS problem.
NOT_RESULTS = {"Problem"}


def short(text: str, max_lines: int = 5, max_chars: int = 600) -> bool:
    return len(text.splitlines()) <= max_lines and len(text) < max_chars


def test_eval_result_repr_is_a_few_lines_with_fvu_and_l0():
    res = evaluate(make_sae("topk"), [torch.randn(300, 12)], max_l0_bin=1500)
    assert len(res.l0_hist) == 1501  # the histogram is still there, as an attribute ...
    text = repr(res)
    assert short(text), text  # ... but not on screen
    assert "FVU" in text and "L0" in text and "len 1,501" in text
    assert str(res) == text
    page = res._repr_html_()
    assert page.startswith("<table>") and page.endswith("</table>") and "FVU" in page
    assert res.to_dict() == dataclasses.asdict(res)


def test_number_formats():
    assert format_number(1215.7924) == "1,220"
    assert format_number(22.6098) == "22.6"
    assert format_number(0.2101) == "0.21"
    assert format_number(3.2e-7) == "3.20e-07"
    assert format_number(float("nan")) == "nan"
    assert format_value(4096, "count") == "4,096"
    assert format_value(0.0123, "pct") == "1.23 %"
    assert format_value((2.2894, 2.71), "num") == "[2.29, 2.71]"
    assert format_value((32.1, 22.6098), "pm") == "32.1 ± 22.6"
    assert format_value((1.0, 0.9, 1.1), "ci") == "1 [0.9, 1.1]"
    assert format_value(torch.zeros(4096, 128), "size") == "shape 4,096 × 128"
    assert format_value(None, "num") == "—"
    with pytest.raises(ValueError, match="unknown headline format"):
        format_value(1.0, "percent")


def test_html_escapes_labels_and_values_and_long_reprs_wrap():
    @dataclasses.dataclass(frozen=True, repr=False)
    class Odd(ResultRepr):
        name: str

        def headline(self):
            return [("<b>name</b>", self.name, "text")] + [(f"field {i}", i / 7, "num") for i in range(20)]

    page = Odd("a & <script>")._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;" in page
    lines = repr(Odd("x")).splitlines()
    assert len(lines) > 1 and all(len(line) <= 100 for line in lines)
    assert all(line.startswith("  ") for line in lines[1:])


def test_splice_metrics_repr():
    text = repr(SpliceMetrics(12345, 3.1, 3.3, 7.2, 0.948, 0.1234))
    assert short(text) and "94.8 %" in text and "12,345" in text


def _result_classes():
    """Every dataclass with to_dict defined in superscope.saes and superscope.probes (configs excluded)."""
    found = {}
    for package in (superscope.saes, superscope.probes):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for name, cls in inspect.getmembers(module, inspect.isclass):
                if (cls.__module__ == module.__name__ and dataclasses.is_dataclass(cls) and hasattr(cls, "to_dict")
                        and not name.endswith("Config") and name not in NOT_RESULTS):
                    found[f"{cls.__module__}.{name}"] = cls
    return found


RESULT_CLASSES = _result_classes()


def test_the_scan_finds_the_known_results():
    names = {key.rsplit(".", 1)[1] for key in RESULT_CLASSES}
    assert {"EvalResult", "RecoveryResult", "SpliceMetrics", "EffectiveFeatures", "FunctionTokenGraph",
            "ScalingToyResult", "BFSProbeResult", "BFSEvalResult"} <= names


@pytest.mark.parametrize("key", sorted(RESULT_CLASSES))
def test_every_result_class_has_a_short_repr(key):
    cls = RESULT_CLASSES[key]
    assert issubclass(cls, ResultRepr), f"{key}: inherit saes.result_repr.ResultRepr and define headline()"
    assert not cls.__dataclass_params__.repr, f"{key}: declare @dataclass(repr=False) so the headline repr is used"
    assert cls.headline is not ResultRepr.headline, f"{key}: list the headline numbers in headline()"
