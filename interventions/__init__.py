"""Interventions: edit SAE latents at their hooks and watch the model (steering, clamping, ablation).

Edits are applied through TransformerLens hooks on the bridge and keep the SAE's error term x − x̂,
so an empty edit leaves the model unchanged (DESIGN.md, "Interventions").
"""
