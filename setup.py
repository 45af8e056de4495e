"""Package discovery for the root-folder layout; everything else is in pyproject.toml.

The repository's root folders are superscope's subpackages (``superscope.saes`` is ``saes/``).
setuptools' static ``packages``/``packages.find`` cannot put a prefix on what it discovers, so the
discovery happens here: every folder with an ``__init__.py`` under a root package ships as
``superscope.<dotted path>``, with nothing to keep in sync by hand when a subpackage is added.
Package data (BFS checkpoints, result JSON, READMEs) is listed by pattern in pyproject.toml, and
tests/test_packaging.py checks that the wheel holds every tracked file under the root packages.
"""

from setuptools import find_packages, setup

ROOT_PACKAGES = ("saes", "kernels", "activations", "probes", "interventions", "analyses", "dashboards", "benchmarks")

subpackages = find_packages(include=[pattern for root in ROOT_PACKAGES for pattern in (root, f"{root}.*")])
setup(
    packages=["superscope", *(f"superscope.{name}" for name in subpackages)],
    package_dir={"superscope": "superscope_pkg", **{f"superscope.{root}": root for root in ROOT_PACKAGES}},
)
