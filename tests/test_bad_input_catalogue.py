"""The bad inputs a user will make, fed to every public entry point (issue: reliability).

Each row: what is called, with what bad input, and a fragment of the one-line message the user must
see. CLI rows also check that the error is one line (no traceback) and that nothing was written.
The table in the closing note is generated from these rows (`python -m tests.test_bad_input_catalogue`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from superscope.analyses.cli import main
from superscope.saes import SAEConfig, TrainConfig, create_sae, load_sae, train

D, F = 12, 48


def _sae_folder(root: Path, arch: str = "topk") -> Path:
    sae = create_sae(SAEConfig(architecture=arch, d_in=D, d_sae=F, k=4))
    return sae.save(root / "sae")


def _shards(root: Path, d: int = D, n: int = 64) -> Path:
    from superscope.activations.shards import ShardWriter

    folder = root / "acts" / "blocks.0.hook_resid_post"
    writer = ShardWriter(folder, {"hook": "blocks.0.hook_resid_post", "d": d, "shape": [d], "dtype": "float32",
                                  "model": "toy", "corpus": {"source": "toy"}, "seed": 0, "context_len": 8,
                                  "contexts_per_shard": n // 8, "n_contexts": n // 8, "n_tokens_requested": n,
                                  "keep_bos": True, "bos_token_id": 0})
    gen = torch.Generator().manual_seed(0)
    contexts = torch.randint(1, 50, (n // 8, 8), generator=gen)
    writer.write(0, 0, {"acts": torch.randn(n, d, generator=gen), "token_ids": contexts.reshape(-1),
                        "context_ids": torch.arange(n // 8).repeat_interleave(8),
                        "positions": torch.arange(8).repeat(n // 8), "contexts": contexts})
    writer.finish()
    return folder


# ---- the command line ---------------------------------------------------------------------------
CLI_CASES = [
    ("train: missing activation folder", lambda t: ["train", "--activations", str(t / "nope"), "--out", str(t / "out")],
     "does not exist"),
    ("train: k ≥ d_sae", lambda t: ["train", "--activations", str(_shards(t)), "--out", str(t / "out"),
                                   "--d-sae", "48", "--k", "48"], "k must satisfy"),
    ("train: activations not a shard folder", lambda t: ["train", "--activations", str(_sae_folder(t)),
                                                        "--out", str(t / "out")], "manifest"),
    ("eval: SAE folder missing", lambda t: ["eval", "--sae", str(t / "nope"), "--activations", str(_shards(t))],
     "SAE folder not found"),
    ("eval: width mismatch", lambda t: ["eval", "--sae", str(_sae_folder(t)), "--activations", str(_shards(t, d=7))],
     "d_in"),
    ("export: foreign folder", lambda t: ["export", "--sae", str(_shards(t)), "--out", str(t / "out")], "not found"),
    ("run: unknown architecture", lambda t: ["run", "--run-dir", str(t / "out"), "--archs", "gated"],
     "unknown architectures"),
    ("run: zero tokens", lambda t: ["run", "--run-dir", str(t / "out"), "--n-tokens", "0"], "must be positive"),
]


@pytest.mark.parametrize("name,argv,message", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input(name, argv, message, tmp_path, capsys):
    args = argv(tmp_path)
    before = sorted(p for p in tmp_path.rglob("*"))
    try:
        code = main(args)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err.strip()
    assert code not in (0, None), name
    assert message in err, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert sorted(p for p in tmp_path.rglob("*")) == before


# ---- loaders ------------------------------------------------------------------------------------
def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _corrupt_sae(t: Path, how: str) -> Path:
    folder = _sae_folder(t)
    if how == "truncated":
        _truncate(folder / "sae.safetensors")
    elif how == "json":
        (folder / "cfg.json").write_text("{not json")
    elif how == "newer":
        cfg = json.loads((folder / "cfg.json").read_text())
        (folder / "cfg.json").write_text(json.dumps({**cfg, "format_version": 999}))
    elif how == "foreign":
        (folder / "cfg.json").write_text(json.dumps({"d_in": 3, "architecture": "standard"}))
    return folder


def _corrupt_shards(t: Path, how: str) -> Path:
    folder = _shards(t)
    if how == "manifest":
        (folder / "manifest.json").write_text("[1, 2")
    elif how == "truncated":
        _truncate(next(folder.glob("*.safetensors")))
    return folder


LOADER_CASES = [
    ("load_sae: truncated safetensors", lambda t: load_sae(_corrupt_sae(t, "truncated")), ValueError, "truncated or corrupt"),
    ("load_sae: cfg.json not JSON", lambda t: load_sae(_corrupt_sae(t, "json")), ValueError, "not valid JSON"),
    ("load_sae: newer format", lambda t: load_sae(_corrupt_sae(t, "newer")), ValueError, "newer than this superscope"),
    ("load_sae: foreign config", lambda t: load_sae(_corrupt_sae(t, "foreign")), ValueError, "not a superscope SAE config"),
    ("load_activations: corrupt manifest", lambda t: __import__("superscope.activations", fromlist=["x"]).load_activations(
        _corrupt_shards(t, "manifest")), ValueError, "manifest"),
    ("load_activations: truncated shard", lambda t: list(__import__("superscope.activations", fromlist=["x"]).load_activations(
        _corrupt_shards(t, "truncated")).batches(16)), ValueError, "shard"),
    ("import_saelens: missing folder", lambda t: __import__("superscope.saes.interop", fromlist=["x"]).import_saelens(
        t / "nope"), FileNotFoundError, "sae_id"),
]


@pytest.mark.parametrize("name,call,exc,message", LOADER_CASES, ids=[c[0] for c in LOADER_CASES])
def test_loader_bad_input(name, call, exc, message, tmp_path):
    with pytest.raises(exc, match=message) as info:
        call(tmp_path)
    assert "\n" not in str(info.value).strip()


# ---- trainer and probes -------------------------------------------------------------------------
def _nan_batches():
    x = torch.randn(32, D)
    x[3, 1] = float("nan")
    return [x]


LIBRARY_CASES = [
    ("train: NaN activations", lambda t: train(SAEConfig(d_in=D, d_sae=F, k=4), _nan_batches(),
                                               TrainConfig(total_tokens=32, batch_size=32, progress=False)),
     ValueError, "NaN or Inf"),
    ("train: integer activations", lambda t: train(SAEConfig(d_in=D, d_sae=F, k=4), [torch.ones(32, D, dtype=torch.long)],
                                                   TrainConfig(total_tokens=32, batch_size=32, progress=False)),
     (TypeError, ValueError), "floating-point|all zero"),
    ("train: zero tokens", lambda t: train(SAEConfig(d_in=D, d_sae=F, k=4), [], TrainConfig(total_tokens=32, progress=False)),
     ValueError, "no batches"),
    ("train: wrong width", lambda t: train(SAEConfig(d_in=D, d_sae=F, k=4), [torch.randn(32, D + 1)],
                                           TrainConfig(total_tokens=32, batch_size=32, progress=False)), ValueError, "d_in"),
    ("SAEConfig: absurd k", lambda t: SAEConfig(d_in=D, d_sae=F, k=10_000), ValueError, "k must satisfy"),
    ("effective_features: width mismatch", lambda t: __import__("superscope.probes", fromlist=["x"]).effective_features_from_codes(
        [torch.rand(8, F + 1)], d_sae=F), ValueError, "width|d_sae"),
    ("effective_features: empty stream", lambda t: __import__("superscope.probes", fromlist=["x"]).effective_features_from_codes(
        [], d_sae=F), ValueError, "empty|no "),
    ("function_token_graph: width mismatch", lambda t: __import__("superscope.probes", fromlist=["x"]).function_token_graph_from_codes(
        [(torch.arange(8), torch.rand(8, F + 3))], d_sae=F), ValueError, "width|d_sae"),
]


@pytest.mark.parametrize("name,call,exc,message", LIBRARY_CASES, ids=[c[0] for c in LIBRARY_CASES])
def test_library_bad_input(name, call, exc, message, tmp_path):
    with pytest.raises(exc, match=message) as info:
        call(tmp_path)
    assert "\n" not in str(info.value).strip()


def catalogue_rows() -> list[tuple[str, str]]:
    """(entry point × bad input, message) for the closing note."""
    import tempfile

    rows = []
    for name, call, _exc, _ in LOADER_CASES + LIBRARY_CASES:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                call(Path(tmp))
            except Exception as err:  # noqa: BLE001 — recording what the user sees
                rows.append((name, f"{type(err).__name__}: {err}"))
    return rows


if __name__ == "__main__":
    for name, message in catalogue_rows():
        print(f"| {name} | {message} |")
