"""Two metrics registered by the suite's tests: one that records what it was given, one that fails."""

from __future__ import annotations

from dataclasses import asdict, dataclass

METRIC = "seen"


@dataclass(frozen=True)
class SeenConfig:
    size: int = 2

    @classmethod
    def quick(cls) -> SeenConfig:
        return cls(size=1)


@dataclass(frozen=True)
class SeenResult:
    d_in: int
    hook: str
    sae_folder: str
    cache: str
    model_vocab: int
    size: int

    def to_dict(self) -> dict:
        return asdict(self)

    def headline(self):
        return [("d_in", self.d_in, "count"), ("size", self.size, "count"), ("hook", self.hook, "text")]


def evaluate_seen(sae, context, config: SeenConfig) -> SeenResult:
    return SeenResult(sae.cfg.d_in, context.hook, str(context.sae_folder), str(context.cache_path("x.json")),
                      int(context.model.W_U.shape[1]), config.size)


@dataclass(frozen=True)
class BoomConfig:
    @classmethod
    def quick(cls) -> BoomConfig:
        return cls()


def evaluate_boom(sae, context, config: BoomConfig):
    raise RuntimeError("planted failure\nwith a second line")
