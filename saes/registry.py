"""Name → SAE class registry, and the one place the rest of the code asks what an architecture is.

Variants register with ``@register("name")``; nothing dispatches by if/elif. What an architecture *is*
lives on its class (one file per variant) and is checked here at registration, so a new variant
without it fails on import rather than showing up unlabelled in a report:

    label            display name in tables and legends ("Mutual Choice")
    color            its colour in every figure ("#d62728")
    order            its place in tables and legends (ascending; ties by name)
    batch_dependent  True when a token's codes depend on the other tokens of the batch (MC, FC,
                     BatchTopK): it has a threshold inference mode, and data-parallel training needs
                     its global_rule
    global_rule      its selection over the global batch of all ranks (``saes.global_selection``);
                     None for a row-local variant (or one whose rule is not written yet)

The registry imports no variant: ``saes/__init__.py`` imports the variant modules, which register
themselves (importing any ``superscope.saes`` submodule runs that ``__init__`` first).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import BaseSAE

_REGISTRY: dict[str, type[BaseSAE]] = {}
REQUIRED = ("label", "color", "order", "batch_dependent")
"""Class attributes every registered variant sets (``global_rule`` defaults to None on BaseSAE)."""
UNREGISTERED_COLOR = "#888888"
"""Grey, for a name a run folder holds but this version does not register."""


def register(name: str) -> Callable[[type[BaseSAE]], type[BaseSAE]]:
    def wrap(cls: type[BaseSAE]) -> type[BaseSAE]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"SAE architecture {name!r} registered twice")
        _check_facts(name, cls)
        _REGISTRY[name] = cls
        cls.architecture = name
        return cls
    return wrap


def _check_facts(name: str, cls: type[BaseSAE]) -> None:
    missing = [attr for attr in REQUIRED if not hasattr(cls, attr)]
    if missing:
        raise TypeError(f"SAE architecture {name!r} ({cls.__name__}) does not set {', '.join(missing)}: "
                        "give it these class attributes (see superscope.saes.registry)")
    if not cls.batch_dependent and cls.global_rule is not None:
        raise TypeError(f"SAE architecture {name!r} is row-local (batch_dependent = False) but sets a global_rule")
    for other, known in _REGISTRY.items():
        for attr in ("label", "color"):
            if other != name and getattr(known, attr) == getattr(cls, attr):
                raise ValueError(f"SAE architecture {name!r} has the {attr} {getattr(cls, attr)!r} of {other!r}: "
                                 f"set its own {attr} on {cls.__name__}")


def known_architectures() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def sae_class(name: str) -> type[BaseSAE]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown SAE architecture {name!r}; registered: {', '.join(sorted(_REGISTRY))}") from None


def arch_order() -> tuple[str, ...]:
    """Registered names in display order (by ``order``, then name)."""
    return tuple(sorted(_REGISTRY, key=lambda name: (_REGISTRY[name].order, name)))


def arch_label(name: str) -> str:
    """Display name of an architecture; an unregistered name (an old run folder's) as it is."""
    cls = _REGISTRY.get(name)
    return cls.label if cls is not None else name


def arch_color(name: str) -> str:
    """Figure colour of an architecture; grey for an unregistered name."""
    cls = _REGISTRY.get(name)
    return cls.color if cls is not None else UNREGISTERED_COLOR
