"""Every registered SAE architecture has a label, a colour and a place in the order wherever the report
and the dashboard key on architecture names (BatchTopK was spelt ``batch_topk`` there while the registry
says ``batchtopk``, so it was shown unlabelled and grey). Derived from the registry: a new variant fails
here until it is labelled."""

import pytest

from superscope.analyses._report_data import ARCH_COLOR, ARCH_LABEL, ARCH_ORDER, arch_key
from superscope.saes import known_architectures

REGISTERED = known_architectures()


@pytest.mark.parametrize("arch", REGISTERED)
def test_every_registered_architecture_has_a_label_colour_and_order(arch):
    assert ARCH_LABEL.get(arch, arch) != arch
    assert arch in ARCH_COLOR and arch in ARCH_ORDER
    assert arch_key(arch)[0] < len(ARCH_ORDER)


@pytest.mark.parametrize("table", [ARCH_LABEL, ARCH_COLOR, dict.fromkeys(ARCH_ORDER)], ids=["label", "colour", "order"])
def test_ui_tables_name_only_registered_architectures(table):
    assert set(table) <= set(REGISTERED), "a misspelt key leaves the registered name unlabelled"


def test_labels_and_colours_are_distinct():
    assert len(set(ARCH_LABEL.values())) == len(ARCH_LABEL)
    assert len(set(ARCH_COLOR.values())) == len(ARCH_COLOR)


def test_dashboard_labels_every_registered_architecture():
    pytest.importorskip("streamlit")
    from superscope.dashboards._ui import arch_label
    assert all(arch_label(a) == ARCH_LABEL[a] for a in REGISTERED)
