"""The binary classification sets shipped inside the ``sae-probes`` distribution, read offline.

``sae-probes`` (Kantamneni et al. 2025, "Are Sparse Autoencoders Useful? A Case Study in Sparse Probing",
arXiv 2502.16681) ships 100+ probing datasets as zstd-compressed CSVs inside its wheel:
``sae_probes/data/cleaned_data/<n>_<tag>.csv.zst`` with the columns ``prompt`` (the text), ``target`` (the
label) and, in most files, ``prompt_len``. Its code pins pandas < 3, sae-lens < 7 and transformer-lens < 4,
none of which we need: we use only its data files. So it is installed with ``pip install --no-deps
sae-probes`` (scripts/setup.sh) and never imported — ``importlib.util.find_spec`` locates its folder
without executing it, and the files are decompressed with ``zstandard`` and parsed with pandas.

A dataset's name is its file stem (``92_glue_sst2``); the tag alone (``glue_sst2``) is accepted too.
Labels follow sae-probes (scikit-learn's ``LabelEncoder``): the two target values sorted, the second is
the positive class 1. Splits are class-balanced, as sae-probes' ``get_train_test_indices`` draws them.
"""

from __future__ import annotations

import difflib
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from jaxtyping import Int

__all__ = ["DEFAULT_DATASETS", "QUICK_DATASETS", "ProbingDataset", "ProbingSplit", "available_datasets",
           "data_dir", "dataset_path", "read_dataset", "split_dataset"]

DISTRIBUTION = "sae_probes"
INSTALL_HINT = "pip install --no-deps sae-probes"

DEFAULT_DATASETS: tuple[str, ...] = (
    "5_hist_fig_ismale",                 # people: is a historical figure male (entity knowledge, 2-6 tokens)
    "92_glue_sst2",                      # sentiment of movie-review phrases (SST-2)
    "159_code_Python",                   # code language: Python vs other source files
    "139_news_class_Politics",           # news topic: politics vs other news (within-domain topic)
    "123_world_country_United_Kingdom",  # geography: is a place name in the UK
    "96_spam_is",                        # SMS spam
    "149_twt_emotion_happiness",         # emotion of tweets
    "154_athlete_sport_football",        # sport of an athlete (entity knowledge)
)
"""Eight binary sets from different domains (people, sentiment, code, news, geography, spam, emotion,
sport), mixing short entity names (knowledge recalled at the last token) with sentences and documents."""

QUICK_DATASETS: tuple[str, ...] = ("92_glue_sst2", "159_code_Python", "123_world_country_United_Kingdom",
                                   "139_news_class_Politics")
"""Four of the defaults (sentiment, code, geography, news) for the quick version."""


def data_dir() -> Path:
    """The folder of sae-probes' compressed CSVs, found without importing the package."""
    spec = importlib.util.find_spec(DISTRIBUTION)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the probing datasets come with the sae-probes distribution, which is not "
                                  f"installed: {INSTALL_HINT}")
    for root in spec.submodule_search_locations:
        folder = Path(root) / "data" / "cleaned_data"
        if folder.is_dir():
            return folder
    raise FileNotFoundError(f"sae-probes is installed but has no data/cleaned_data folder; reinstall it: "
                            f"{INSTALL_HINT}")


def _number(stem: str) -> int:
    head = stem.split("_", 1)[0]
    return int(head) if head.isdigit() else 1 << 30


def available_datasets() -> list[str]:
    """Every dataset name (file stem) in the distribution, by number (binary and multi-class alike)."""
    stems = [p.name.removesuffix(".csv.zst") for p in data_dir().glob("*.csv.zst")]
    return sorted(stems, key=lambda s: (_number(s), s))


def dataset_path(name: str) -> Path:
    """The file of dataset ``name`` (a file stem such as ``92_glue_sst2``, or the tag ``glue_sst2``)."""
    names = available_datasets()
    if name not in names:
        by_tag = [s for s in names if s.split("_", 1)[-1] == name]
        if len(by_tag) != 1:
            near = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(near)}?" if near else f"e.g. {', '.join(DEFAULT_DATASETS[:3])}"
            raise ValueError(f"no probing dataset named {name!r} in sae-probes ({len(names)} datasets); {hint}")
        name = by_tag[0]
    return data_dir() / f"{name}.csv.zst"


@dataclass(frozen=True)
class ProbingDataset:
    """One binary dataset: texts and 0/1 labels (``classes[label]`` is the original target value)."""

    name: str
    texts: tuple[str, ...]
    labels: Int[np.ndarray, " n"]
    classes: tuple[str, str]


def read_dataset(name: str) -> ProbingDataset:
    """Read one dataset (decompressed with zstandard as it streams, parsed with pandas). Rows with an
    empty prompt or a missing target are dropped; a dataset whose target has other than two values is
    refused (a regression or multi-class set)."""
    import pandas as pd
    import zstandard

    path = dataset_path(name)
    with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as text:
        frame = pd.read_csv(text)
    missing = {"prompt", "target"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path.name} lacks the column(s) {sorted(missing)} (has {list(frame.columns)}); "
                         "it is not a sae-probes probing file")
    frame = frame.dropna(subset=["prompt", "target"])
    frame = frame[frame["prompt"].astype(str).str.strip() != ""]
    values = sorted(frame["target"].unique().tolist())
    if len(values) != 2:
        raise ValueError(f"probing dataset {path.name.removesuffix('.csv.zst')!r} has {len(values)} target values, "
                         "not 2; sparse probing needs a binary dataset (e.g. one of its '<tag>_<class>' files)")
    labels = (frame["target"] == values[1]).to_numpy().astype(np.int64)
    return ProbingDataset(path.name.removesuffix(".csv.zst"), tuple(frame["prompt"].astype(str)), labels,
                          (str(values[0]), str(values[1])))


@dataclass(frozen=True)
class ProbingSplit:
    """A class-balanced train/test split of one dataset (disjoint rows)."""

    name: str
    train_texts: tuple[str, ...]
    train_labels: Int[np.ndarray, " n_train"]
    test_texts: tuple[str, ...]
    test_labels: Int[np.ndarray, " n_test"]


def split_dataset(dataset: ProbingDataset, n_train: int, n_test: int, seed: int = 0) -> ProbingSplit:
    """Draw ``n_train`` training and ``n_test`` test rows, half of each from each class (⌈n/2⌉ positives,
    as sae-probes does). A class too small for both is shrunk proportionally (never overlapping); an
    empty class or split is refused."""
    if n_train < 2 or n_test < 1:
        raise ValueError(f"n_train must be ≥ 2 and n_test ≥ 1 (got {n_train}, {n_test}): a split would be empty")
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(dataset.labels == 1), np.flatnonzero(dataset.labels == 0)
    want = {"train": (math.ceil(n_train / 2), n_train // 2), "test": (math.ceil(n_test / 2), n_test // 2)}
    have = min(len(pos), len(neg))
    need = max(want["train"][0] + want["test"][0], want["train"][1] + want["test"][1])
    if need > have:  # shrink both splits by the same factor
        scale = have / need
        want = {s: (math.floor(p * scale), math.floor(n * scale)) for s, (p, n) in want.items()}
    if min(min(want["train"]), max(want["test"])) < 1:
        raise ValueError(f"probing dataset {dataset.name!r} has {len(pos)} positive and {len(neg)} negative rows: too "
                         f"few for a train and a test split with both classes; pick another dataset")
    pos, neg = rng.permutation(pos), rng.permutation(neg)
    n_pos_train, n_neg_train = want["train"]
    n_pos_test, n_neg_test = want["test"]
    train = rng.permutation(np.concatenate([pos[:n_pos_train], neg[:n_neg_train]]))
    test = rng.permutation(np.concatenate([pos[n_pos_train:n_pos_train + n_pos_test],
                                           neg[n_neg_train:n_neg_train + n_neg_test]]))
    return ProbingSplit(dataset.name, tuple(dataset.texts[i] for i in train), dataset.labels[train],
                        tuple(dataset.texts[i] for i in test), dataset.labels[test])
