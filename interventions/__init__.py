"""Interventions: edit SAE latents at their hooks and watch the model (steering, clamping, ablation).

Edits are applied through TransformerLens hooks on the bridge and keep the SAE's error term x − x̂,
so an empty edit leaves the model unchanged (DESIGN.md, "Interventions").

    from superscope.interventions import Edit, steered, generate, edit_cost, dose_response
    edit = Edit("blocks.15.hook_resid_post", 123, "add", 8.0)
    with steered(model, sae, [edit]):
        logits = model(tokens)
    generate(model, sae, [edit], "The weather today")      # clean vs steered continuation, KL per token
    edit_cost(model, sae, [edit], contexts.split(8))        # KL, ΔCE, the latent's own shift
    dose_response(model, sae, edit, [0, 2, 4, 8], contexts).figure()
"""

from .cost import EditCost, LatentShift, edit_cost
from .dose import DoseResponse, dose_response, promoted_token
from .edits import OPS, Edit, parse_edit
from .generation import Generation, generate
from .steering import Steering, check_edits, steered

__all__ = [
    "OPS", "DoseResponse", "Edit", "EditCost", "Generation", "LatentShift", "Steering", "check_edits",
    "dose_response", "edit_cost", "generate", "parse_edit", "promoted_token", "steered",
]
