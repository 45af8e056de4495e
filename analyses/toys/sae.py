"""L1 sparse autoencoders on toy-model activations, one per toy and per initialisation, trained at once.

The SAE of the superposition-entropy paper (Bereska et al. 2025; their public code trains a ReLU SAE
with an L1 penalty on the codes and averages the feature count over 3 SAE seeds): for input h ∈ R^N,

    z = ReLU(W_enc h + b_enc) ∈ R^D,   ĥ = z W_dec,   L = E‖h − ĥ‖² + λ E Σ_j z_j,

with the rows of W_dec kept at unit norm (W_dec is divided by its row norms in the forward pass), so
the penalty cannot be dodged by shrinking the codes and z_j is the feature's amplitude in activation
units, which is what the mass p_j = Σ_s z_js / Σ Σ z of the probe counts. No decoder bias: the toy's
activations h = W f have no offset (f = 0 ↦ h = 0), and a b_dec shifts the origin so that codes must
take both signs of each direction. All I·R SAEs (I toys × R initialisations) are one batch of tensors
[I·R, ...], so a sweep trains in one loop of small batched matmuls.

Letters: I toys, R initialisations per toy, B samples, N toy neurons (SAE input), D SAE features, F
toy features.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm


@dataclass(frozen=True)
class ToySAEs:
    """I·R trained SAEs; instance i·R + r is toy i's r-th initialisation."""

    W_enc: Tensor  # [I·R, N, D]
    b_enc: Tensor  # [I·R, D]
    W_dec: Tensor  # [I·R, D, N], unit-norm rows
    n_inits: int  # R

    def encode(self, h_XBN: Tensor) -> Tensor:
        """Codes z [I·R, B, D] of activations h [I·R, B, N]."""
        return torch.relu(torch.einsum("xbn,xnd->xbd", h_XBN, self.W_enc) + self.b_enc[:, None])

    def decode(self, z_XBD: Tensor) -> Tensor:
        return torch.einsum("xbd,xdn->xbn", z_XBD, self.W_dec)


def _unit_rows(W: Tensor) -> Tensor:
    return W / W.norm(dim=-1, keepdim=True).clamp_min(1e-8)


def train_l1_saes(W_INF: Tensor, batches: Iterator[Tensor], *, d_sae: int, l1_coef: float, steps: int, lr: float,
                  n_inits: int, seed: int, progress: bool = False) -> ToySAEs:
    """Train R L1 SAEs per toy on the toys' activations.

    `batches` yields toy features f [I, B, F]; each toy's SAEs see h = W_i f_i (the R initialisations
    of a toy share the data). Adam with a linear decay of the learning rate over the last 20 % of the
    steps. Decoder rows start as random unit vectors and the encoder as their transpose.
    """
    I, N, _ = W_INF.shape
    X = I * n_inits
    gen = torch.Generator().manual_seed(seed)
    W_dec = torch.nn.Parameter(_unit_rows(torch.randn(X, d_sae, N, generator=gen)))
    W_enc = torch.nn.Parameter(W_dec.detach().transpose(1, 2).clone())
    b_enc = torch.nn.Parameter(torch.zeros(X, d_sae))
    opt = torch.optim.Adam([W_enc, b_enc, W_dec], lr=lr)
    decay_from = int(0.8 * steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 if s < decay_from else (steps - s) / (steps - decay_from))
    for _ in tqdm(range(steps), desc="L1 SAEs", disable=not progress, leave=False):
        f_IBF = next(batches)
        h_XBN = torch.einsum("ibf,inf->ibn", f_IBF, W_INF).repeat_interleave(n_inits, 0)
        sae = ToySAEs(W_enc, b_enc, _unit_rows(W_dec), n_inits)
        z_XBD = sae.encode(h_XBN)
        rec = ((sae.decode(z_XBD) - h_XBN) ** 2).sum(-1).mean(-1)
        loss = (rec + l1_coef * z_XBD.sum(-1).mean(-1)).sum()  # a sum of independent per-SAE losses
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return ToySAEs(W_enc.detach(), b_enc.detach(), _unit_rows(W_dec.detach()), n_inits)


def measure_effective_features(sae: ToySAEs, W_INF: Tensor, batches: Iterator[Tensor], n_batches: int,
                               n_bootstrap: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ψ = F_eff / N of every SAE on fresh toy activations, through the probe's MassAccumulator.

    Returns ψ [I, R], the 95 % bootstrap CI of F_eff averaged over a toy's R SAEs [I, 2] (the basic
    interval of the probe, probes/estimators.py `bootstrap_interval`, on the mean of independent bootstrap
    replicates around the mean F_eff), and the FVU [I, R] on the same samples.
    """
    from superscope.probes.estimators import bootstrap_interval
    from superscope.probes.superposition_entropy import MassAccumulator

    I, N, _ = W_INF.shape
    R, D = sae.n_inits, sae.W_dec.shape[1]
    accs = [MassAccumulator(D) for _ in range(I * R)]
    err, var = torch.zeros(I * R, dtype=torch.float64), torch.zeros(I * R, dtype=torch.float64)
    with torch.no_grad():
        for _ in range(n_batches):
            h_XBN = torch.einsum("ibf,inf->ibn", next(batches), W_INF).repeat_interleave(R, 0)
            z_XBD = sae.encode(h_XBN)
            for x, acc in enumerate(accs):
                acc.add(z_XBD[x])
            err += ((sae.decode(z_XBD) - h_XBN) ** 2).sum((1, 2)).double()
            var += ((h_XBN - h_XBN.mean(1, keepdim=True)) ** 2).sum((1, 2)).double()
    res = [acc.result(N, n_bootstrap=n_bootstrap, seed=seed) for acc in accs]
    psi = np.array([r.psi for r in res]).reshape(I, R)
    boot = [torch.stack([accs[i * R + r].bootstrap(n_bootstrap, seed + r) for r in range(R)]).mean(0) for i in range(I)]
    f_eff = psi * N
    ci = np.array([bootstrap_interval(b, f_eff[i].mean(), 0.95) if b.numel() else (np.nan, np.nan)
                   for i, b in enumerate(boot)])
    return psi, ci, (err / var).numpy().reshape(I, R)
