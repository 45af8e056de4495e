"""Group means with bootstrap CIs (resampling whole problems), gaps between groups, histograms.

Rows are (problem id, step, group index, value). Values of one problem are correlated, so the
bootstrap resamples problems, not rows: for resample weights w_p (multinomial counts),
mean_g = Σ_p w_p S_{g,p} / Σ_p w_p N_{g,p} with S, N the per-problem sums and counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GroupStat:
    step: int
    group: str
    mean: float
    ci_low: float
    ci_high: float
    n: int
    """Rows (node or edge instances) in the group at this step."""


@dataclass(frozen=True)
class GapStat:
    step: int
    upper: str
    lower: str
    gap: float
    """mean(upper) − mean(lower)."""
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Histogram:
    step: int
    group: str
    edges: tuple[float, ...]
    counts: tuple[int, ...]


def _per_problem(rows: np.ndarray, n_problems: int, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    sums, counts = np.zeros((n_groups, n_problems)), np.zeros((n_groups, n_problems))
    pid, grp = rows[:, 0].astype(int), rows[:, 2].astype(int)
    np.add.at(sums, (grp, pid), rows[:, 3])
    np.add.at(counts, (grp, pid), 1.0)
    return sums, counts


def bootstrap_group_stats(rows: np.ndarray, n_problems: int, groups: tuple[str, ...], n_boot: int,
                          level: float, rng: np.random.Generator) -> tuple[tuple[GroupStat, ...], tuple[GapStat, ...]]:
    """Per step: each group's mean with a percentile CI, and adjacent-group gaps with CIs."""
    q = [50 * (1 - level), 50 * (1 + level)]
    W = rng.multinomial(n_problems, np.full(n_problems, 1.0 / n_problems), size=n_boot).astype(float)
    stats, gaps = [], []
    for step in sorted({int(s) for s in rows[:, 1]}):
        sums, counts = _per_problem(rows[rows[:, 1] == step], n_problems, len(groups))
        with np.errstate(invalid="ignore", divide="ignore"):
            point = sums.sum(1) / counts.sum(1)
            boot = (W @ sums.T) / (W @ counts.T)  # [n_boot, groups]
        for g, name in enumerate(groups):
            n = int(counts[g].sum())
            lo, hi = np.nanpercentile(boot[:, g], q) if n else (np.nan, np.nan)
            stats.append(GroupStat(step, name, float(point[g]), float(lo), float(hi), n))
        for g in range(len(groups) - 1):
            if counts[g].sum() and counts[g + 1].sum():
                lo, hi = np.nanpercentile(boot[:, g] - boot[:, g + 1], q)
                gaps.append(GapStat(step, groups[g], groups[g + 1], float(point[g] - point[g + 1]),
                                    float(lo), float(hi)))
    return tuple(stats), tuple(gaps)


def histograms(rows: np.ndarray, groups: tuple[str, ...], n_bins: int) -> tuple[Histogram, ...]:
    """Per step, counts of each group's values over shared bin edges."""
    out = []
    for step in sorted({int(s) for s in rows[:, 1]}):
        sel = rows[rows[:, 1] == step]
        edges = np.histogram_bin_edges(sel[:, 3], bins=n_bins)
        for g, name in enumerate(groups):
            counts, _ = np.histogram(sel[sel[:, 2] == g, 3], bins=edges)
            out.append(Histogram(step, name, tuple(float(e) for e in edges), tuple(int(c) for c in counts)))
    return tuple(out)
