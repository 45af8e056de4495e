"""Cached readers: everything keyed by path + modification time, so an updated run folder is re-read
and an unchanged one costs nothing on the next rerun. Arrays behind memory maps (feature data, SAEs,
the model) are cached as resources (shared, not copied); JSON-like results as data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from superscope.analyses.features.storage import FeatureData
from superscope.analyses.runs.data import RunData, load_run


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def run_signature(root: Path) -> float:
    """Latest modification time of the files ``load_run`` reads."""
    files = [root / "run.json", *root.glob("probes/*.json"), *root.glob("saes/*/*/metrics.json"),
             *root.glob("saes/*/*/sae.safetensors"), *root.glob("features/*/*/index.json")]
    return max((_mtime(p) for p in files), default=0.0) + len(files) * 1e-9


@st.cache_data(show_spinner="Reading the run folder: run.json, each SAE's metrics and training log, the probe "
                             "results (once per server)…", max_entries=16)
def _run_data(path: str, signature: float) -> RunData:
    return load_run(path)


def run_data(root: Path) -> RunData:
    return _run_data(str(root), run_signature(root))


@st.cache_resource(show_spinner=False, max_entries=32)
def _feature_data(path: str, mtime: float) -> FeatureData:
    return FeatureData(path)


def feature_data(folder: Path) -> FeatureData:
    return _feature_data(str(folder), _mtime(folder / "index.json"))


@st.cache_data(show_spinner=False, max_entries=32)
def _feature_table(path: str, mtime: float) -> pd.DataFrame:
    fd = _feature_data(path, mtime)
    return pd.DataFrame(fd.summary).set_index("feature", drop=False)


def feature_table(folder: Path) -> pd.DataFrame:
    """One row per feature: count, density, mean / max activation, top logit token, top token."""
    return _feature_table(str(folder), _mtime(folder / "index.json"))


@st.cache_resource(show_spinner=False, max_entries=16)
def _sae(path: str, mtime: float):
    from superscope.saes import load_sae
    return load_sae(path).eval()


def sae(folder: Path):
    return _sae(str(folder), _mtime(folder / "sae.safetensors"))


@st.cache_resource(show_spinner="Loading the model (once per server)…")
def model(name: str | None = None):
    from superscope.activations import load_model
    return load_model(name)


@st.cache_data(show_spinner=False, max_entries=16)
def _difficulty(path: str, hook: str, signature: float, max_tokens: int) -> dict:
    from superscope.analyses.report.difficulty import l0_vs_difficulty
    return l0_vs_difficulty(path, hook, max_tokens=max_tokens).to_dict()


def difficulty(root: Path, hook: str, max_tokens: int):
    """Per-token L0 vs difficulty: the run's precomputed result when fresh (written by the last step of
    `superscope run`), else computed once per server with a progress line saying what is computed."""
    from superscope.analyses.report.difficulty import L0Difficulty, load_precomputed
    res = load_precomputed(root, hook, max_tokens)
    if res is not None:
        return res
    with st.spinner(f"Computing per-token L0 vs difficulty: encoding {max_tokens:,} held-out tokens at {hook} with "
                    "each SAE (once per server; `superscope run` precomputes the default size)…", show_time=True):
        d = _difficulty(str(root), hook, run_signature(root), max_tokens)
    return L0Difficulty(**{k: tuple(v) if k == "bin_difficulty" else v for k, v in d.items()})


@st.cache_data(show_spinner="Collecting the token's features: encoding up to 32,768 held-out tokens with the SAE "
                             "(once per server)…", max_entries=64)
def _token_features(path: str, hook: str, arch: str, token_id: int, signature: float, max_tokens: int) -> dict:
    from ._queries import token_feature_set
    return token_feature_set(Path(path), hook, arch, token_id, max_tokens)


def token_features(root: Path, hook: str, arch: str, token_id: int, max_tokens: int = 32768) -> dict:
    """A token's feature set: the run's precomputed one when fresh (the precompute step of `superscope run`
    writes the most frequent tokens'), else computed once per server."""
    from superscope.analyses.runs.token_features import load_precomputed

    found = load_precomputed(root, hook, arch, token_id, max_tokens)
    if found is not None:
        return found
    return _token_features(str(root), hook, arch, int(token_id), run_signature(root), max_tokens)
