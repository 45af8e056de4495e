"""The offline evaluation suite (specs/evals.md): SAEBench-style metrics run on a run folder's SAEs.

Results go to ``runs/<run>/evals/<hook>/<arch>/<metric>.json`` with SAEBench's field names where a
metric exists there (Karvonen et al. 2025, arXiv 2503.09532).
"""
