"""Name → SAE class registry. Variants register with ``@register("name")``; nothing dispatches by if/elif."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import BaseSAE

_REGISTRY: dict[str, type[BaseSAE]] = {}


def register(name: str) -> Callable[[type[BaseSAE]], type[BaseSAE]]:
    def wrap(cls: type[BaseSAE]) -> type[BaseSAE]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"SAE architecture {name!r} registered twice")
        _REGISTRY[name] = cls
        cls.architecture = name
        return cls
    return wrap


def known_architectures() -> tuple[str, ...]:
    _load_builtin()
    return tuple(sorted(_REGISTRY))


def sae_class(name: str) -> type[BaseSAE]:
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown SAE architecture {name!r}; registered: {', '.join(sorted(_REGISTRY))}") from None


def _load_builtin() -> None:
    from . import feature_choice, mutual_choice, topk  # noqa: F401  (registration side effects)
