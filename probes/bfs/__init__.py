"""BFS-superposition in continuous thoughts: Coconut on graph reachability, and its probe.

Zhu et al. 2025, "Reasoning by Superposition"; Hao et al. 2024, "Coconut". The pieces:
generator (ProsQA-style problems), tokens (sequence formats), model (GPT-2-style decoder),
coconut (the continuous-thought loop), batches (curriculum losses), evaluate (accuracy),
probe (⟨t_i, E[v]⟩ and edge attention by BFS group), figures, checkpoint (shipped weights).
Training lives in superscope.analyses.bfs.train; the CLI in superscope.analyses.cli.bfs.
"""

from .checkpoint import Checkpoint, load_bfs_checkpoint, save_bfs_checkpoint
from .coconut import coconut_forward, coconut_reference, collate_prompts
from .evaluate import BFSEvalResult, accuracy
from .generator import GraphConfig, Problem, generate_problems, make_splits
from .model import GPT, ModelConfig
from .probe import GROUPS, BFSProbeResult, ProbeConfig, bfs_probe
from .tokens import Vocab, encode_prompt

__all__ = [
    "GPT",
    "GROUPS",
    "BFSEvalResult",
    "BFSProbeResult",
    "Checkpoint",
    "GraphConfig",
    "ModelConfig",
    "ProbeConfig",
    "Problem",
    "Vocab",
    "accuracy",
    "bfs_probe",
    "coconut_forward",
    "coconut_reference",
    "collate_prompts",
    "encode_prompt",
    "generate_problems",
    "load_bfs_checkpoint",
    "make_splits",
    "save_bfs_checkpoint",
]
