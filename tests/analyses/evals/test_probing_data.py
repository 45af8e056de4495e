"""The sae-probes datasets read offline: real files, names, splits and the one-line errors."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from superscope.analyses.evals import probing_data
from superscope.analyses.evals.probing_data import (
    DEFAULT_DATASETS,
    QUICK_DATASETS,
    ProbingDataset,
    available_datasets,
    dataset_path,
    read_dataset,
    split_dataset,
)


def test_the_distribution_ships_the_datasets_we_name():
    names = available_datasets()
    assert len(names) > 100
    assert set(DEFAULT_DATASETS) <= set(names) and set(QUICK_DATASETS) <= set(DEFAULT_DATASETS)
    assert names.index("5_hist_fig_ismale") < names.index("92_glue_sst2")  # numeric order, not text order


def test_a_real_dataset_reads_as_balanced_binary_texts():
    ds = read_dataset("123_world_country_United_Kingdom")
    assert ds.name == "123_world_country_United_Kingdom" and ds.classes == ("0", "1")
    assert len(ds.texts) == len(ds.labels) == 2000
    assert int(ds.labels.sum()) == 1000 and set(np.unique(ds.labels)) == {0, 1}
    assert all(isinstance(t, str) and t.strip() for t in ds.texts)


def test_string_targets_become_sorted_labels():
    ds = read_dataset("105_click_bait")  # targets 'clickbait' / 'factual': the second in sorted order is 1
    assert ds.classes == ("clickbait", "factual")
    assert 0 < ds.labels.mean() < 1


def test_a_tag_without_its_number_resolves():
    assert dataset_path("glue_sst2").name == "92_glue_sst2.csv.zst"


def test_a_missing_dataset_is_one_line_naming_near_matches():
    with pytest.raises(ValueError, match=r"no probing dataset named 'glue_sst3'.*did you mean 92_glue_sst2") as err:
        dataset_path("glue_sst3")
    assert "\n" not in str(err.value)


def test_a_multiclass_dataset_is_refused():
    with pytest.raises(ValueError, match="3 target values, not 2"):
        read_dataset("27_art_type")


def test_a_missing_distribution_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sae_probes" else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps sae-probes"):
        probing_data.data_dir()


def _toy(n_pos: int, n_neg: int) -> ProbingDataset:
    labels = np.array([1] * n_pos + [0] * n_neg)
    return ProbingDataset("toy", tuple(f"text {i}" for i in range(len(labels))), labels, ("a", "b"))


def test_split_is_balanced_disjoint_and_seeded():
    split = split_dataset(_toy(50, 70), n_train=20, n_test=11, seed=3)
    assert len(split.train_texts) == 20 and len(split.test_texts) == 11
    assert split.train_labels.sum() == 10 and split.test_labels.sum() == 6  # ⌈n/2⌉ positives
    assert not set(split.train_texts) & set(split.test_texts)
    texts = {f"text {i}": i for i in range(120)}
    assert all((texts[t] < 50) == bool(y) for t, y in zip(split.train_texts, split.train_labels, strict=True))
    assert split_dataset(_toy(50, 70), 20, 11, seed=3).train_texts == split.train_texts
    assert split_dataset(_toy(50, 70), 20, 11, seed=4).train_texts != split.train_texts


def test_a_small_class_shrinks_both_splits_without_overlap():
    split = split_dataset(_toy(6, 100), n_train=20, n_test=10, seed=0)
    assert split.train_labels.sum() + split.test_labels.sum() <= 6
    assert split.test_labels.sum() >= 1 and not set(split.train_texts) & set(split.test_texts)


def test_an_empty_split_is_one_line():
    with pytest.raises(ValueError, match="too few for a train and a test split") as err:
        split_dataset(_toy(1, 100), n_train=20, n_test=10)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="a split would be empty"):
        split_dataset(_toy(50, 50), n_train=20, n_test=0)


def test_every_default_dataset_splits_at_the_default_size():
    for name in DEFAULT_DATASETS:
        split = split_dataset(read_dataset(name), 200, 100)
        assert len(split.train_texts) == 200 and len(split.test_texts) == 100, name
