"""Batch analyses: the ``superscope`` command (cli), the main job (pipeline), run folders (runs),
per-feature data (features), the HTML report (report), toy experiments (toys) and BFS training (bfs)."""
