"""The main job, ``superscope run``: its config, its steps, and the probe step."""
