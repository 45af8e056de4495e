"""A small run folder that ``superscope steer`` and the Steering page can use end to end: the tiny bridge
(tests/tiny_model.py) named in run.json, a TopK SAE of width 32 at blocks.0.hook_resid_post and its
held-out contexts (harvested from the tiny corpus), and a feature-data stand-in is not needed: the page
falls back to latent indices when a run has no feature data."""

from __future__ import annotations

from pathlib import Path

HOOK = "blocks.0.hook_resid_post"


def build_steer_run(root: Path, name: str = "steer") -> Path:
    """``root/<name>``: run.json (config.model = the tiny model folder), saes/<HOOK>/topk/, heldout/<HOOK>/."""
    from superscope.activations import harvest, load_model
    from superscope.saes import SAEConfig, create_sae
    from superscope.saes.atomic_io import write_json
    from tests.tiny_model import build_tiny_model

    (root / "model_src").mkdir(parents=True, exist_ok=True)
    folder, corpus = build_tiny_model(root / "model_src")
    run = root / name
    model = load_model(str(folder))
    write_json(run / "run.json", {"format": "superscope.run", "name": name, "main_hook": HOOK, "hooks": [HOOK],
                                  "archs": ["topk"], "config": {"model": str(folder), "context_len": 16}})
    sae = create_sae(SAEConfig(architecture="topk", d_in=32, d_sae=64, k=4, hook_name=HOOK))
    sae.save(run / "saes" / HOOK / "topk")
    harvest(model, [HOOK], n_tokens=16 * 8, corpus=str(corpus), context_len=16, out_dir=run / "heldout",
            progress=False)
    return run
