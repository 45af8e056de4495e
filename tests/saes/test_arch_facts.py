"""What an architecture is (label, colour, order, batch dependence, global selection rule) lives on its
class and nowhere else: the config's Literal names exactly the registry, every variant states its facts,
and registering one that does not fails on the spot (issue 13, item 4)."""

from __future__ import annotations

import re
from typing import get_args

import pytest

from superscope.saes import registry
from superscope.saes.base import BaseSAE
from superscope.saes.config import Architecture, SAEConfig
from superscope.saes.global_selection import GlobalBatch, global_rule
from superscope.saes.mutual_choice import MutualChoiceSAE
from superscope.saes.registry import arch_order, known_architectures, register, sae_class
from superscope.saes.topk import TopKSAE


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made in the test are undone afterwards."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_config_literal_names_exactly_the_registry():
    names = get_args(Architecture)
    assert len(names) == len(set(names))
    assert set(names) == set(known_architectures())
    assert set(arch_order()) == set(known_architectures())


@pytest.mark.parametrize("name", known_architectures())
def test_every_variant_states_its_facts(name):
    cls = sae_class(name)
    assert cls.architecture == name
    assert isinstance(cls.label, str) and cls.label and cls.label != name
    assert re.fullmatch(r"#[0-9a-f]{6}", cls.color)
    assert isinstance(cls.order, int) and isinstance(cls.batch_dependent, bool)
    # every built-in batch-dependent variant can train data-parallel; a row-local one has no rule
    assert (cls.global_rule is not None) == cls.batch_dependent
    assert global_rule(name) is cls.global_rule


def test_facts_are_what_the_papers_say():
    assert [sae_class(n).batch_dependent for n in ("topk", "batchtopk", "mutual_choice", "feature_choice")] == [
        False, True, True, True]
    assert global_rule("batchtopk") is global_rule("mutual_choice") is GlobalBatch.mutual_choice
    assert global_rule("feature_choice") is GlobalBatch.feature_choice
    assert len({sae_class(n).label for n in known_architectures()}) == len(known_architectures())
    assert len({sae_class(n).color for n in known_architectures()}) == len(known_architectures())


def test_a_variant_without_its_facts_fails_at_registration(scratch_registry):
    with pytest.raises(TypeError, match="label, color, order, batch_dependent"):
        @register("bare")
        class Bare(BaseSAE):  # no facts at all
            pass

    with pytest.raises(ValueError, match="label 'Mutual Choice' of 'mutual_choice'"):
        @register("copy_of_mc")
        class CopyOfMC(MutualChoiceSAE):  # inherits MC's label: would be indistinguishable in a report
            pass

    with pytest.raises(TypeError, match="row-local"):
        @register("contradiction")
        class Contradiction(TopKSAE):
            label, color = "Contradiction", "#000001"
            global_rule = staticmethod(GlobalBatch.mutual_choice)

    assert {"bare", "copy_of_mc", "contradiction"}.isdisjoint(known_architectures())


def test_a_new_variant_is_usable_and_a_missing_global_rule_is_named(scratch_registry):
    @register("dummy_global")
    class DummyGlobal(MutualChoiceSAE):
        label, color, order = "Dummy global", "#010203", 10
        global_rule = None

    assert "dummy_global" in known_architectures() and arch_order()[-1] == "dummy_global"
    assert SAEConfig(architecture="dummy_global", d_in=8, d_sae=16, k=2).architecture == "dummy_global"
    with pytest.raises(ValueError, match="no data-parallel selection rule: set global_rule on DummyGlobal"):
        global_rule("dummy_global")
    with pytest.raises(ValueError, match="unknown SAE architecture 'never_registered'"):
        global_rule("never_registered")
