"""Keep the repository's root folders from shadowing installed distributions of the same name.

The root folders are the subpackages of ``superscope`` (``kernels/`` is ``superscope.kernels``, see
pyproject.toml). Whenever the repository root is on ``sys.path`` — a notebook, REPL or ``python -c``
started in the clone, ``python -m ...``, pytest with package-style tests, a subprocess or the
Streamlit server with the clone as working directory — ``import kernels`` finds ``kernels/`` before
site-packages. ``kernels`` is also the Hugging Face distribution that transformers ≥ 5 imports, so
the folder must never win over it.

The mechanism: the root package's ``__init__`` checks the name it is imported under. As
``superscope.kernels`` it runs its own body; as the top-level ``kernels`` it calls
:func:`defer_to_installed`, which loads the installed distribution from ``sys.path`` without the
repository root and puts it into ``sys.modules`` in its place. Python's import statement returns
whatever ``sys.modules`` holds once the module body has run, so ``import kernels`` (and
``from kernels import X``, ``importlib.import_module("kernels.sub")``) then sees the distribution.
This holds wherever the clone root is on ``sys.path`` — editable install, notebooks, subprocesses,
Streamlit — and the wheel never has the problem (its files live under ``superscope/``).

Alternatives tried: deleting ``kernels/__init__.py`` makes the folder a namespace portion that loses
to the distribution, but setuptools' editable finder then cannot find ``superscope.kernels``, and the
package's re-exports are gone; renaming the folder breaks the layout users were promised.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys


def _same_dir(entry: str, root: str) -> bool:
    try:
        return os.path.samefile(entry or os.getcwd(), root)
    except OSError:  # a sys.path entry that does not exist (or a zip file)
        return False


def defer_to_installed(name: str, init_file: str) -> None:
    """Replace the half-imported root folder ``name`` in ``sys.modules`` by the installed distribution.

    ``init_file`` is the root folder's ``__init__.py``; its parent's parent is the repository root,
    which is left out of the search. Raises ``ModuleNotFoundError`` (as a plain ``import name``
    would) when no distribution of that name is installed, so availability checks such as
    ``importlib.util.find_spec`` followed by a guarded import behave as without the clone.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(init_file)))
    search_path = [entry for entry in sys.path if not _same_dir(entry, root)]
    spec = importlib.machinery.PathFinder.find_spec(name, search_path)
    if spec is None or spec.loader is None:
        sys.modules.pop(name, None)
        raise ModuleNotFoundError(
            f"No module named {name!r} outside the superscope clone ({root}); superscope's own "
            f"folder is imported as 'superscope.{name}'", name=name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
