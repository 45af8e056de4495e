"""Feature data on disk: ``features/<hook>/<arch>/`` = features.safetensors + index.json + strings.json.

features.safetensors holds the arrays (letters: F features, K top examples, B quantile bands, E
examples per band, W window tokens, H histogram bins, L logits, N neighbours):

    count_F, density_F, mean_act_F, max_act_F       firing count / rate / mean and max activation
    hist_FH (counts), hist_edges_H1                 activation histogram over shared log-spaced bins
    top_acts_FK, top_rows_FK, top_tokens_FKW, top_win_FKW
                                                    top-K activations, their held-out row, the ±W/2
                                                    window's token ids (−1 = none) and the feature's
                                                    activation on each window token
    top_center_FK                                   the token each top activation fired on
    band_acts_FBE, band_rows_FBE, band_tokens_FBEW, band_win_FBEW, band_edges_FB2
                                                    examples from B quantile bands of a uniform sample
    logit_{top,bot}_{ids,vals}_FL                   direct logit effects (see _features_static)
    neighbour_ids_FN, neighbour_cos_FN              nearest decoder directions

index.json describes the folder (format, hook, architecture, sizes, settings, timings); strings.json
maps every token id used above to its decoded string, so the dashboard needs no tokenizer. Each file
is written atomically; index.json is written last, so a folder without it is incomplete.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open
from torch import Tensor

from superscope.saes.atomic_io import read_json, write_json, write_safetensors

FORMAT = "superscope.features"
VERSION = 1
TENSORS, INDEX, STRINGS = "features.safetensors", "index.json", "strings.json"
EAGER = ("count_F", "density_F", "mean_act_F", "max_act_F", "hist_edges_H1", "logit_top_ids_FL",
         "logit_top_vals_FL", "logit_bot_ids_FL", "logit_bot_vals_FL", "neighbour_ids_FN", "neighbour_cos_FN",
         "top_center_FK")


def write_feature_folder(folder: Path, tensors: dict[str, Tensor], index: dict[str, Any],
                         strings: dict[int, str]) -> Path:
    """Write the three files atomically (index.json last: its presence marks a complete folder)."""
    folder = Path(folder)
    (folder / INDEX).unlink(missing_ok=True)
    write_safetensors(folder / TENSORS, tensors, metadata={"format": FORMAT})
    ids = sorted(strings)
    write_json(folder / STRINGS, {"ids": ids, "strings": [strings[i] for i in ids]})
    shapes = {name: list(t.shape) for name, t in tensors.items()}
    write_json(folder / INDEX, {"format": FORMAT, "version": VERSION, **index, "tensors": shapes})
    return folder


class FeatureData:
    """Read one ``features/<hook>/<arch>/`` folder: small per-feature arrays eagerly, the large
    example arrays one feature at a time from the memory-mapped safetensors file."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not (self.folder / INDEX).is_file():
            raise FileNotFoundError(f"no feature data in {self.folder} (index.json missing): run "
                                    "`superscope run` with feature_data on, or write_feature_data(run, model)")
        self.index = read_json(self.folder / INDEX, "feature-data index")
        if not isinstance(self.index, dict) or self.index.get("format") != FORMAT:
            raise ValueError(f"{self.folder / INDEX} is not a superscope feature-data index")
        if self.index.get("version") != VERSION:
            raise ValueError(f"{self.folder} has feature-data version {self.index.get('version')}, "
                             f"this superscope reads {VERSION}; regenerate it")
        try:
            self._file = safe_open(str(self.folder / TENSORS), framework="pt")
        except (SafetensorError, OSError, FileNotFoundError) as err:
            raise ValueError(f"feature arrays {self.folder / TENSORS} are missing or corrupt ({err}); "
                             "regenerate the feature data") from None
        names = set(self._file.keys())
        missing = set(self.index.get("tensors", {})) - names
        if missing:
            raise ValueError(f"{self.folder / TENSORS} lacks {sorted(missing)}; regenerate the feature data")
        self.arrays = {n: self._file.get_tensor(n) for n in EAGER if n in names}
        raw = read_json(self.folder / STRINGS, "feature-data token strings")
        self.strings = dict(zip(raw["ids"], raw["strings"]))

    @property
    def n_features(self) -> int:
        return int(self.index["d_sae"])

    def token(self, token_id: int) -> str:
        return self.strings.get(int(token_id), f"<{int(token_id)}>")

    def row(self, name: str, f: int) -> Tensor:
        """Row f of a stored array, read lazily."""
        if not 0 <= f < self.n_features:
            raise ValueError(f"feature {f} out of range: this SAE has {self.n_features} features (0…{self.n_features - 1})")
        return self._file.get_slice(name)[f:f + 1][0]

    @cached_property
    def summary(self) -> dict[str, list]:
        """Per-feature columns for a searchable table: id, count, density, mean / max activation,
        top logit token, the token at the centre of the top example."""
        a = self.arrays
        cols: dict[str, list] = {"feature": list(range(self.n_features)), "count": a["count_F"].tolist(),
                                 "density": a["density_F"].tolist(), "mean_act": a["mean_act_F"].tolist(),
                                 "max_act": a["max_act_F"].tolist()}
        if "logit_top_ids_FL" in a:
            cols["top_logit"] = [self.token(i) for i in a["logit_top_ids_FL"][:, 0].tolist()]
        if "top_center_FK" in a:
            cols["top_token"] = [self.token(i) if i >= 0 else "" for i in a["top_center_FK"][:, 0].tolist()]
        return cols

    def card(self, f: int):
        """Everything about feature ``f`` as a ``FeatureCard``."""
        from superscope.analyses.features.card import build_card
        return build_card(self, f)
