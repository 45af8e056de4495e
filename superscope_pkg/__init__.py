"""superscope — a workbench for superposition in language models.

The repository's root folders are the subpackages: ``superscope.saes`` is ``saes/``,
``superscope.kernels`` is ``kernels/`` and so on (see pyproject.toml's ``package-dir``).
"""

__version__ = "0.1.0"
