"""Sparse autoencoders: TopK, BatchTopK, Mutual Choice, Feature Choice (each also as Matryoshka); losses,
trainer, metrics.

    from superscope.saes import MutualChoiceSAE, train, evaluate
    sae = train(MutualChoiceSAE.config(d_in=576, d_sae=4608, k=32), batches)

Importing this package imports every variant module, and each registers itself (saes/registry.py).
"""

from .base import BaseSAE, ForwardOutput, Selection
from .config import SAEConfig, TrainConfig
from .evaluate import EvalResult, RecoveryResult, evaluate, fvu, ground_truth_recovery
from .feature_choice import FeatureChoiceSAE
from .jumprelu import JumpReLUSAE
from .losses import aux_zipf_loss, auxk_loss, normalized_mse
from .matryoshka import (
    MatryoshkaBatchTopKSAE,
    MatryoshkaFeatureChoiceSAE,
    MatryoshkaMutualChoiceSAE,
    MatryoshkaTopKSAE,
)
from .mutual_choice import BatchTopKSAE, MutualChoiceSAE
from .persistence import create_sae, load_sae, save_sae
from .registry import known_architectures, sae_class
from .topk import TopKSAE
from .trainer import Trainer, train

__all__ = [
    "BaseSAE", "BatchTopKSAE", "EvalResult", "FeatureChoiceSAE", "ForwardOutput", "JumpReLUSAE", "MutualChoiceSAE",
    "MatryoshkaBatchTopKSAE", "MatryoshkaFeatureChoiceSAE", "MatryoshkaMutualChoiceSAE", "MatryoshkaTopKSAE",
    "RecoveryResult", "SAEConfig", "Selection", "TopKSAE", "TrainConfig", "Trainer", "aux_zipf_loss",
    "auxk_loss", "create_sae", "evaluate", "fvu", "ground_truth_recovery", "known_architectures",
    "load_sae", "normalized_mse", "sae_class", "save_sae", "train",
]
