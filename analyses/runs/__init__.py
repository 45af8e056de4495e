"""The run folder: its paths (folder), reading a run for the report and dashboard (data), and a toy run."""
